"""The same pipeline for a cluster: compiled to KFP IR YAML, or submitted with `kfp.Client`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import RunConfig

if TYPE_CHECKING:
    from pipelines.cluster_config import ClusterConfig


class SubmissionError(RuntimeError):
    """The KFP endpoint could not take the pipeline; the message says why."""


def compile_pipeline(
    config: RunConfig, output: Path, registry_dir: str = "", cluster: ClusterConfig | None = None
) -> Path:
    """The pipeline as KFP IR YAML; with ``cluster``, each step carries its Kubernetes settings."""
    from kfp import compiler

    from pipelines.pipeline import recforge_pipeline

    pipeline = recforge_pipeline
    if cluster is not None:
        from pipelines.cluster_pipeline import cluster_pipeline

        pipeline = cluster_pipeline(cluster)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(
        pipeline,
        package_path=str(output),
        pipeline_parameters={"config_json": config.to_json(), "registry_dir": registry_dir},
    )
    return output


def submit_pipeline(
    config: RunConfig,
    host: str,
    *,
    experiment: str = "recforge",
    run_name: str | None = None,
    registry_dir: str = "/mnt/recforge/registry",
    cluster: ClusterConfig | None = None,
) -> str:
    """Compile, then create a run on the KFP API at `host`; returns the run id."""
    import contextlib
    import sys
    import tempfile

    import kfp

    run_name = run_name or f"recforge-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    with tempfile.TemporaryDirectory() as folder:
        package = compile_pipeline(config, Path(folder) / "pipeline.yaml", registry_dir, cluster)
        try:
            # kfp prints links to the UI: keep stdout for the run id alone
            with contextlib.redirect_stdout(sys.stderr):
                client = kfp.Client(host=host)
                run = client.create_run_from_pipeline_package(
                    str(package), arguments={}, run_name=run_name, experiment_name=experiment
                )
        except Exception as error:  # noqa: BLE001 - the API client raises many unrelated types
            raise SubmissionError(f"{host}: {type(error).__name__}: {error}") from None
    return run.run_id
