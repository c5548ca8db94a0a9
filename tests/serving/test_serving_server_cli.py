"""`python -m serving.server`: a bad flag ends with exit code 2 and a message naming it."""

from __future__ import annotations

import pytest

from serving.server import main


def exit_message(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


def test_predictor_without_artifact_names_the_flag(capsys):
    assert "--artifact: required" in exit_message(capsys, ["--port", "8080"])


def test_artifact_that_is_not_one_names_the_artifact(capsys, tmp_path):
    assert "artifact: " in exit_message(capsys, ["--artifact", str(tmp_path / "nope")])


@pytest.mark.parametrize("port", ["0", "70000"])
def test_port_out_of_range_names_the_field(capsys, tiny_artifact, port):
    message = exit_message(capsys, ["--artifact", str(tiny_artifact), "--port", port])
    assert "http_port: expected an integer 1-65535" in message


def test_feature_repo_without_feast_config_names_the_fix(capsys, tiny_artifact, tmp_path):
    argv = ["--artifact", str(tiny_artifact), "--feature-repo", str(tmp_path)]
    assert "feature_repo: " in exit_message(capsys, argv)


def test_transformer_needs_a_feature_repo_and_a_predictor(capsys):
    assert "--predictor-host" in exit_message(capsys, ["--transformer"])


def test_model_name_with_a_slash_is_refused(capsys, tiny_artifact):
    argv = ["--artifact", str(tiny_artifact), "--model-name", "a/b"]
    assert "model_name" in exit_message(capsys, argv)


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "example: python -m serving.server --artifact" in capsys.readouterr().out
