"""The RecForge pipeline: data checks → features → training → evaluation → canary → report.

``build_pipeline`` makes the pipeline function; ``configure_step(task)`` is called on every step
so a target can add its platform settings (the cluster target: resources, GPU, secrets, PVC —
see ``pipelines.cluster_pipeline``). ``recforge_pipeline`` is the plain one ``kfp.local`` runs.
"""

from collections.abc import Callable

from kfp import dsl

from pipelines import components as c

StepHook = Callable[[dsl.PipelineTask], object]


def build_pipeline(configure_step: StepHook | None = None, pipeline_root: str | None = None):
    def step(task: dsl.PipelineTask, display_name: str) -> dsl.PipelineTask:
        task.set_display_name(display_name)
        if configure_step is not None:
            configure_step(task)
        return task

    @dsl.pipeline(
        name="recforge",
        description="Raw events to a canary-tested multi-task ranker.",
        pipeline_root=pipeline_root or None,
    )
    def recforge_pipeline(config_json: str, output_dir: str = "", registry_dir: str = ""):
        raw = step(c.simulate_events(config_json=config_json), "simulate")
        checks = step(c.check_data(
            config_json=config_json, output_dir=output_dir, raw_data=raw.outputs["raw_data"]
        ), "data checks")
        store = step(c.build_feature_store(
            config_json=config_json, raw_data=raw.outputs["raw_data"],
            checks=checks.outputs["results"],
        ), "feature store")
        training_set = step(c.build_training_set(
            config_json=config_json, raw_data=raw.outputs["raw_data"],
            feature_store=store.outputs["feature_store"],
        ), "training set")
        candidate = step(c.train_candidate(
            config_json=config_json, training_set=training_set.outputs["training_set"]
        ), "train candidate")
        baseline = step(c.resolve_baseline(
            config_json=config_json, registry_dir=registry_dir,
            training_set=training_set.outputs["training_set"],
        ), "served baseline")
        evaluation = step(c.evaluate_models(
            config_json=config_json, training_set=training_set.outputs["training_set"],
            candidate=candidate.outputs["candidate"], baseline=baseline.outputs["baseline"],
        ), "evaluate and bless")
        canary = step(c.canary_rollout(
            config_json=config_json, registry_dir=registry_dir,
            feature_store=store.outputs["feature_store"], candidate=candidate.outputs["candidate"],
            baseline=baseline.outputs["baseline"], evaluation=evaluation.outputs["evaluation"],
        ), "canary")
        step(c.write_report(
            config_json=config_json, output_dir=output_dir, raw_data=raw.outputs["raw_data"],
            checks=checks.outputs["results"], feature_store=store.outputs["feature_store"],
            training_set=training_set.outputs["training_set"],
            candidate=candidate.outputs["candidate"], baseline=baseline.outputs["baseline"],
            evaluation=evaluation.outputs["evaluation"], canary=canary.outputs["canary"],
        ), "report")

    return recforge_pipeline


recforge_pipeline = build_pipeline()
