"""`recforge k8s check`: one command a user's CI can run — readable lines, exit 0/1/2."""

from __future__ import annotations

import pytest
import yaml

from pipelines.k8s_check import main


@pytest.fixture(autouse=True)
def _needs_helm():
    pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's Go library) is not installed")


def check(*argv: str) -> int:
    return main(["--skip-checkov", *argv])


def values_file(tmp_path, values) -> str:
    path = tmp_path / "my-values.yaml"
    path.write_text(yaml.safe_dump(values) if not isinstance(values, str) else values)
    return str(path)


def test_every_value_set_of_the_chart_passes(capsys):
    assert check() == 0
    out = capsys.readouterr().out
    assert "7 value set(s), Kubernetes 1.29, 1.33" in out
    assert "✓ canary-10:" in out and out.rstrip().splitlines()[-1].startswith("OK in")


def test_a_users_values_file_is_checked_alone(tmp_path, capsys):
    assert (
        check("--values", values_file(tmp_path, {"model": {"version": "v7"}}), "--kube-version", "1.31") == 0
    )
    out = capsys.readouterr().out
    assert "1 value set(s), Kubernetes 1.31" in out and "✓ my-values:" in out


def test_a_typo_fails_the_check_naming_the_key(tmp_path, capsys):
    assert check("--values", values_file(tmp_path, {"inferenceService": {"canary": {"percent": 10}}})) == 1
    out = capsys.readouterr().out
    assert "✗ my-values: render failed" in out and "'percent' not allowed" in out
    assert out.rstrip().splitlines()[-1].startswith("FAILED")


def test_an_invalid_kfp_run_config_fails_the_check_naming_the_field(tmp_path, capsys):
    values = {"kfp": {"host": "http://kfp:8888", "runConfig": {"train": {"epochs": 0}}}}
    assert check("--values", values_file(tmp_path, values)) == 1
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "kfp.runConfig" in line]
    assert "train.epochs: must be >= 1" in line


def test_a_values_file_that_is_not_a_mapping_is_a_usage_error(tmp_path, capsys):
    assert check("--values", values_file(tmp_path, "- a\n- b\n")) == 2
    assert "must hold a mapping of values" in capsys.readouterr().err


def test_an_unsupported_kubernetes_version_is_a_usage_error(capsys):
    assert check("--kube-version", "1.9") == 2
    assert "kubernetes-validate bundles no strict schemas" in capsys.readouterr().err


def test_a_folder_without_a_chart_is_a_usage_error(tmp_path, capsys):
    assert check("--chart", str(tmp_path)) == 2
    assert "is not a Helm chart" in capsys.readouterr().err
