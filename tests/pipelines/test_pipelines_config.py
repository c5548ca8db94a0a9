import pytest

from pipelines.config import PROFILES, ConfigError, RunConfig, load_config


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_builds_and_round_trips_through_json(profile):
    config = load_config(profile)
    assert RunConfig.from_json(config.to_json()) == config


def test_yaml_sections_override_the_profile(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  num_experts: 6\n  expert_hidden: [32, 16]\ntrain:\n  epochs: 1\n")
    config = load_config("smoke", path)
    assert config.model.num_experts == 6
    assert config.model.expert_hidden == (32, 16)
    assert config.simulation.num_users == PROFILES["smoke"]["simulation"]["num_users"]


def test_a_typo_in_a_key_names_the_field_and_the_allowed_ones(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  num_expert: 6\n")
    with pytest.raises(ConfigError, match=r"model\.num_expert: unknown field.*num_experts"):
        load_config("default", path)


def test_a_wrong_type_names_the_field(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  epochs: three\n")
    with pytest.raises(ConfigError, match=r"train\.epochs: expected int, got 'three'"):
        load_config("default", path)


def test_a_bool_is_not_taken_for_a_number():
    with pytest.raises(ConfigError, match=r"train\.batch_size: expected int"):
        load_config("default", overrides={"train": {"batch_size": True}})


def test_an_invalid_value_is_reported_with_its_section():
    with pytest.raises(ConfigError, match=r"model\.architecture"):
        load_config("default", overrides={"model": {"architecture": "transformer"}})


def test_an_unknown_profile_lists_the_choices():
    with pytest.raises(ConfigError, match=r"profile: unknown profile 'huge'.*smoke"):
        load_config("huge")


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no file at"):
        load_config("default", tmp_path / "absent.yaml")


def test_holdout_must_leave_training_days():
    with pytest.raises(ConfigError, match="holdout_days"):
        load_config("smoke", overrides={"holdout_days": 6})


def test_loading_with_overrides_leaves_the_built_in_profiles_unchanged(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  num_experts: 6\n")
    before = load_config("smoke")
    load_config("smoke", path)
    assert load_config("smoke") == before
