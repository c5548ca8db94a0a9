"""kfp v2 components: each a thin wrapper that hands paths and the run config to `pipelines.steps`.

Lightweight components run their function body in a fresh interpreter, so imports live inside.
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Model, Output

IMAGE = "recforge/recforge:0.1.0-python3.11"


def _component(function):
    return dsl.component(function, base_image=IMAGE, install_kfp_package=False)


@_component
def simulate_events(config_json: str, raw_data: Output[Dataset]):
    from pipelines import steps

    raw_data.metadata.update(steps.simulate(config_json, raw_data.path))


@_component
def check_data(
    config_json: str, output_dir: str, raw_data: Input[Dataset], results: Output[Artifact],
    data_docs: Output[HTML],
):
    from pipelines import steps

    results.metadata.update(
        steps.check_data(config_json, raw_data.path, results.path, data_docs.path, output_dir)
    )


@_component
def build_feature_store(
    config_json: str, raw_data: Input[Dataset], checks: Input[Artifact],
    feature_store: Output[Dataset],
):
    from pipelines import steps

    feature_store.metadata.update(
        steps.build_feature_store(config_json, raw_data.path, feature_store.path)
    )


@_component
def build_training_set(
    config_json: str, raw_data: Input[Dataset], feature_store: Input[Dataset],
    training_set: Output[Dataset],
):
    from pipelines import steps

    training_set.metadata.update(
        steps.build_training_set(config_json, raw_data.path, feature_store.path, training_set.path)
    )


@_component
def train_candidate(config_json: str, training_set: Input[Dataset], candidate: Output[Model]):
    from pipelines import steps

    candidate.metadata.update(steps.train_candidate(config_json, training_set.path, candidate.path))


@_component
def resolve_baseline(
    config_json: str, registry_dir: str, training_set: Input[Dataset], baseline: Output[Model]
):
    from pipelines import steps

    baseline.metadata.update(
        steps.resolve_baseline(config_json, registry_dir, training_set.path, baseline.path)
    )


@_component
def evaluate_models(
    config_json: str, training_set: Input[Dataset], candidate: Input[Model],
    baseline: Input[Model], evaluation: Output[Artifact],
):
    from pipelines import steps

    evaluation.metadata.update(
        steps.evaluate(config_json, training_set.path, candidate.path, baseline.path,
                       evaluation.path)
    )


@_component
def canary_rollout(
    config_json: str, registry_dir: str, feature_store: Input[Dataset], candidate: Input[Model],
    baseline: Input[Model], evaluation: Input[Artifact], canary: Output[Artifact],
):
    from pipelines import steps

    canary.metadata.update(
        steps.canary(config_json, registry_dir, feature_store.path, candidate.path, baseline.path,
                     evaluation.path, canary.path)
    )


@_component
def write_report(
    config_json: str, output_dir: str, raw_data: Input[Dataset], checks: Input[Artifact],
    feature_store: Input[Dataset], training_set: Input[Dataset], candidate: Input[Model],
    baseline: Input[Model], evaluation: Input[Artifact], canary: Input[Artifact],
    report: Output[HTML],
):
    from pipelines import steps

    steps.write_report(
        config_json, output_dir, report.path,
        {
            "simulate": raw_data.metadata, "data_checks": checks.metadata,
            "feature_store": feature_store.metadata, "training_set": training_set.metadata,
            "train_candidate": candidate.metadata, "resolve_baseline": baseline.metadata,
            "evaluate": evaluation.metadata, "canary": canary.metadata,
        },
        checks.path, evaluation.path, canary.path, candidate.path, baseline.path,
    )
