"""``recforge compile --target cluster`` and ``recforge submit --target cluster --schedule CRON``.

``add_*_arguments`` add the cluster flags to the existing ``compile`` / ``submit`` parsers (which
already have ``--profile``, ``--config``, ``--output`` / ``--host``, ``--experiment``,
``--run-name``, ``--registry-dir``); ``run_*`` then handle the whole command for both targets.
The ``--config`` file may carry a ``cluster:`` section (:mod:`pipelines.cluster_config`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from pipelines.cluster_config import ClusterConfig, split_cluster_section
from pipelines.config import ConfigError, RunConfig, load_config, read_config_file

TARGETS = ("local", "cluster")


def add_compile_arguments(parser: argparse.ArgumentParser) -> None:
    _add_target_arguments(parser)
    parser.add_argument(
        "--registry-dir",
        default="/mnt/recforge/registry",
        help="model registry path inside the pipeline's pods (cluster target)",
    )


def add_submit_arguments(parser: argparse.ArgumentParser) -> None:
    _add_target_arguments(parser)
    parser.add_argument(
        "--pipeline-name",
        default="recforge",
        help="upload as a version of this KFP pipeline instead of a one-off run",
    )
    parser.add_argument(
        "--version-name", help="name of the uploaded version (default: <pipeline-name>-<UTC time>)"
    )
    parser.add_argument(
        "--schedule",
        metavar="CRON",
        help="retrain on a schedule: upload a version and point the recurring run "
        '"<pipeline-name>-schedule" at it, e.g. "0 3 * * *" (03:00 daily)',
    )


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="local",
        help="local: plain steps (kfp.local); cluster: per-step Kubernetes settings "
        "from the config's cluster section",
    )
    parser.add_argument(
        "--image", help="RecForge image of every step (cluster target; overrides cluster.image)"
    )


def load_run_and_cluster(args: argparse.Namespace) -> tuple[RunConfig, ClusterConfig | None]:
    """The run config and, for ``--target cluster``, the cluster section (with ``--image``)."""
    data = read_config_file(args.config) if args.config else {}
    rest, cluster = split_cluster_section(data)
    if args.target == "local":
        if "cluster" in data or args.image:
            raise ConfigError(
                "cluster: the cluster section and --image only apply to --target cluster; add "
                "--target cluster or remove them"
            )
        cluster = None
    elif args.image:
        cluster = _with_image(cluster, args.image)
    return load_config(args.profile, None, rest), cluster


def _with_image(cluster: ClusterConfig, image: str) -> ClusterConfig:
    import dataclasses

    return dataclasses.replace(cluster, image=image)


def run_compile(args: argparse.Namespace) -> int:
    from pipelines.submission import compile_pipeline

    config, cluster = load_run_and_cluster(args)
    registry_dir = args.registry_dir if cluster is not None else ""
    path = compile_pipeline(config, args.output, registry_dir, cluster)
    print(f"recforge: wrote {path} (target {args.target})")
    return 0


def run_submit(args: argparse.Namespace) -> int:
    from pipelines.cluster_submit import kfp_cron, upload_and_schedule
    from pipelines.submission import SubmissionError, compile_pipeline, submit_pipeline

    if args.schedule is not None:
        try:
            kfp_cron(args.schedule)
        except ValueError as error:
            print(f"recforge: {error}", file=sys.stderr)
            return 2
    config, cluster = load_run_and_cluster(args)
    try:
        if args.schedule is None and args.version_name is None:
            run_id = submit_pipeline(
                config,
                args.host,
                experiment=args.experiment,
                run_name=args.run_name,
                registry_dir=args.registry_dir,
                cluster=cluster,
            )
            print(json.dumps({"run_id": run_id, "host": args.host}))
            return 0
        import tempfile

        version = args.version_name or f"{args.pipeline_name}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
        with tempfile.TemporaryDirectory() as folder:
            package = compile_pipeline(config, Path(folder) / "pipeline.yaml", args.registry_dir, cluster)
            upload = upload_and_schedule(
                package,
                args.host,
                pipeline_name=args.pipeline_name,
                version_name=version,
                experiment=args.experiment,
                schedule=args.schedule,
            )
    except SubmissionError as error:
        print(f"recforge: submit failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps({**upload.to_dict(), "version_name": version, "host": args.host}))
    return 0
