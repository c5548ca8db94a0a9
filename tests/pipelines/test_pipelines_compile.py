import yaml
from kfp import components

from pipelines.cli import main
from pipelines.config import load_config
from pipelines.submission import compile_pipeline

STEPS = {
    "simulate-events", "check-data", "build-feature-store", "build-training-set",
    "train-candidate", "resolve-baseline", "evaluate-models", "canary-rollout", "write-report",
}


def test_compiled_pipeline_loads_back_into_kfp_with_every_step(tmp_path):
    path = compile_pipeline(load_config("smoke"), tmp_path / "pipeline.yaml")
    loaded = components.load_component_from_file(str(path))
    assert loaded.name == "recforge"
    spec = yaml.safe_load(path.read_text())
    assert set(spec["root"]["dag"]["tasks"]) == STEPS


def test_the_run_config_is_the_default_of_the_config_parameter(tmp_path):
    config = load_config("smoke")
    spec = yaml.safe_load(compile_pipeline(config, tmp_path / "p.yaml").read_text())
    parameter = spec["root"]["inputDefinitions"]["parameters"]["config_json"]
    assert parameter["defaultValue"] == config.to_json()


def test_compile_command_writes_the_file(tmp_path, capsys):
    assert main(["compile", "--profile", "smoke", "--output", str(tmp_path / "p.yaml")]) == 0
    assert (tmp_path / "p.yaml").is_file()
    assert "wrote" in capsys.readouterr().out


def test_a_bad_config_is_a_clear_cli_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: 0}\n")
    assert main(["compile", "--config", str(bad), "--output", str(tmp_path / "p.yaml")]) == 2
    assert "train.epochs: must be >= 1" in capsys.readouterr().err
