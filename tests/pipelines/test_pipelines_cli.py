import pytest

from pipelines.cli import BENCHMARKS, main

NOUNS = ("run", "compile", "submit", "train", "bench", "rollout", "k8s", "serve")


@pytest.mark.parametrize("noun", NOUNS)
def test_every_command_has_help_with_an_example(noun, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([noun, "--help"])
    assert exit_.value.code == 0
    assert "example: recforge" in capsys.readouterr().out


def test_bench_hands_its_options_to_the_benchmark(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "ops", "--help"])
    assert exit_.value.code == 0
    assert "--small" in capsys.readouterr().out


@pytest.mark.parametrize("suite", sorted(BENCHMARKS))
def test_every_benchmark_answers_help(suite, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", suite, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage: ")


def test_serve_without_an_artifact_names_the_flag(capsys):
    assert main(["serve"]) == 2
    assert "--artifact" in capsys.readouterr().err


def test_no_command_prints_usage(capsys):
    assert main([]) == 2
    assert "usage: recforge" in capsys.readouterr().out
