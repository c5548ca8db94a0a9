"""`recforge` command line: one sub-command per noun, each a thin call into the library."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

EXAMPLES = {
    "run": "recforge run --profile smoke --output recforge-output",
    "compile": "recforge compile --output recforge-pipeline.yaml",
    "submit": "recforge submit --host http://localhost:8888 --experiment recforge",
    "train": "recforge train --config examples/census_income.yaml",
    "bench": "recforge bench ops --small",
    "rollout": "recforge rollout watch --inference-service recforge-ranker --namespace recforge "
               "--prometheus-url http://prometheus:9090",
    "k8s": "recforge k8s check --values my-values.yaml",
    "serve": "recforge serve --artifact recforge-output/registry/versions/<version> "
             "--feature-repo recforge-output/feature-store --port 8080",
}


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning threads
    # slowed a training step 13x (2.5 s vs 0.19 s). Read once when torch loads, so set it first;
    # every step and model server process inherits it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from pipelines.config import ConfigError

    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"recforge: configuration error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    from pipelines import cluster_cli, k8s_check, tabular
    from serving import controller_cli

    parser = argparse.ArgumentParser(
        prog="recforge", description="Multi-task recommender pipelines on kfp, Feast and KServe."
    )
    commands = parser.add_subparsers(title="commands")

    def command(name: str, help_text: str, handler) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, help=help_text, description=help_text, epilog=f"example: {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    def config_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--profile", default="default", help="built-in profile: default or smoke")
        sub.add_argument("--config", type=Path, help="YAML file with config sections to override")

    run = command("run", "Run the whole pipeline on this machine (kfp.local).", _run)
    config_options(run)
    run.add_argument("--output", type=Path, default=Path("recforge-output"),
                     help="folder for the report, data docs and pipeline artifacts")
    run.add_argument("--data", type=Path,
                     help="folder with events/*.parquet, users.parquet, items.parquet to use "
                          "instead of the simulator")
    run.add_argument("--registry", type=Path,
                     help="model registry folder (default: OUTPUT/registry); share it across runs "
                          "so the next run's candidate faces the model this run promoted")

    compile_ = command("compile", "Write the pipeline as KFP IR YAML.", _compile)
    config_options(compile_)
    compile_.add_argument("--output", type=Path, required=True, help="YAML file to write")
    cluster_cli.add_compile_arguments(compile_)

    submit = command("submit", "Submit the pipeline to a Kubeflow Pipelines endpoint (once, or "
                               "on a schedule).", _submit)
    config_options(submit)
    submit.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8888")
    submit.add_argument("--experiment", default="recforge", help="KFP experiment name")
    submit.add_argument("--run-name", help="name of the run (default: recforge-<time>)")
    submit.add_argument("--registry-dir", default="/mnt/recforge/registry",
                        help="model registry path inside the pipeline's pods")
    cluster_cli.add_submit_arguments(submit)

    train = command("train", "Train a multi-task model on your own CSV/Parquet data described by "
                             "a config file.", _train)
    tabular.add_arguments(train)

    bench = command("bench", "Run a benchmark; each prints ratios to a baseline measured in the "
                             "same run.", _bench)
    bench.add_argument("suite", choices=sorted(BENCHMARKS), help="which benchmark")
    bench.add_argument("options", nargs=argparse.REMAINDER,
                       help="options of that benchmark (see `recforge bench SUITE --help`)")

    rollout = command("rollout", "Canary rollout on a cluster: watch an InferenceService, decide "
                                 "from Prometheus, patch it.", _rollout)
    rollout.add_argument("action", choices=["watch"], help="watch: the rollout controller loop")
    controller_cli.add_arguments(rollout)

    k8s = command("k8s", "Check the Helm chart offline: render, lint, schemas, checkov.", _k8s)
    k8s.add_argument("action", choices=["check"], help="check: render and check every value set")
    k8s_check.add_arguments(k8s)

    serve = command("serve", "Serve a model artifact with a KServe model server (V1 + V2).", _serve)
    from serving.server import add_serve_arguments

    add_serve_arguments(serve)
    return parser


def _load(args: argparse.Namespace):
    from pipelines.config import load_config

    overrides = {"data_dir": str(args.data.resolve())} if getattr(args, "data", None) else {}
    return load_config(args.profile, args.config, overrides)


def _with_local_paths(config):
    """Local runs resolve the embedding cache once, so every step process finds the same one."""
    import dataclasses

    cache = Path(config.features.cache_dir).expanduser().resolve()
    return dataclasses.replace(
        config, features=dataclasses.replace(config.features, cache_dir=str(cache))
    )


def _run(args: argparse.Namespace) -> int:
    from pipelines.local_run import PipelineFailed, run_local

    config = _with_local_paths(_load(args))
    output = args.output.resolve()
    registry = (args.registry or output / "registry").resolve()
    started = time.perf_counter()
    try:
        report = run_local(config, output, registry)
    except PipelineFailed as failure:
        print(f"recforge: the pipeline stopped: {failure}", file=sys.stderr)
        return 1
    print(
        f"recforge: done in {time.perf_counter() - started:.0f} s — blessed: {report['blessed']}, "
        f"canary: {report['canary'].get('decision')}\n  report: {output / 'report.html'}\n"
        f"  json:   {output / 'report.json'}"
    )
    return 0


def _compile(args: argparse.Namespace) -> int:
    from pipelines.cluster_cli import run_compile

    return run_compile(args)


def _submit(args: argparse.Namespace) -> int:
    from pipelines.cluster_cli import run_submit

    return run_submit(args)


def _train(args: argparse.Namespace) -> int:
    from pipelines.tabular import run

    return run(args)


def _rollout(args: argparse.Namespace) -> int:
    from serving.controller_cli import run

    return run(args)


def _k8s(args: argparse.Namespace) -> int:
    from pipelines.k8s_check import run

    return run(args)


BENCHMARKS = {
    "ops": "ops.bench",
    "train": "pipelines.bench_train",
    "train-step": "pipelines.bench_train_step",
    "train-distill": "pipelines.bench_train_distill",
    "train-coldstart": "pipelines.bench_train_coldstart",
    "train-scenario": "pipelines.bench_train_scenario",
    "canary": "pipelines.bench_canary",
    "serving": "pipelines.bench_serving",
}


def _bench(args: argparse.Namespace) -> int:
    import importlib

    return importlib.import_module(BENCHMARKS[args.suite]).main(args.options) or 0


def _serve(args: argparse.Namespace) -> int:
    from serving.server import run_from_args

    try:
        run_from_args(args)
    except ValueError as error:
        print(f"recforge serve: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
