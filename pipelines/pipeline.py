"""The RecForge pipeline: data checks → features → training → evaluation → canary → report."""

from kfp import dsl

from pipelines import components as c


@dsl.pipeline(name="recforge", description="Raw events to a canary-tested multi-task ranker.")
def recforge_pipeline(config_json: str, output_dir: str = "", registry_dir: str = ""):
    raw = c.simulate_events(config_json=config_json).set_display_name("simulate")
    checks = c.check_data(
        config_json=config_json, output_dir=output_dir, raw_data=raw.outputs["raw_data"]
    ).set_display_name("data checks")
    store = c.build_feature_store(
        config_json=config_json, raw_data=raw.outputs["raw_data"],
        checks=checks.outputs["results"],
    ).set_display_name("feature store")
    training_set = c.build_training_set(
        config_json=config_json, raw_data=raw.outputs["raw_data"],
        feature_store=store.outputs["feature_store"],
    ).set_display_name("training set")
    candidate = c.train_candidate(
        config_json=config_json, training_set=training_set.outputs["training_set"]
    ).set_display_name("train candidate")
    baseline = c.resolve_baseline(
        config_json=config_json, registry_dir=registry_dir,
        training_set=training_set.outputs["training_set"],
    ).set_display_name("served baseline")
    evaluation = c.evaluate_models(
        config_json=config_json, training_set=training_set.outputs["training_set"],
        candidate=candidate.outputs["candidate"], baseline=baseline.outputs["baseline"],
    ).set_display_name("evaluate and bless")
    canary = c.canary_rollout(
        config_json=config_json, registry_dir=registry_dir,
        feature_store=store.outputs["feature_store"], candidate=candidate.outputs["candidate"],
        baseline=baseline.outputs["baseline"], evaluation=evaluation.outputs["evaluation"],
    ).set_display_name("canary")
    c.write_report(
        config_json=config_json, output_dir=output_dir, raw_data=raw.outputs["raw_data"],
        checks=checks.outputs["results"], feature_store=store.outputs["feature_store"],
        training_set=training_set.outputs["training_set"],
        candidate=candidate.outputs["candidate"], baseline=baseline.outputs["baseline"],
        evaluation=evaluation.outputs["evaluation"], canary=canary.outputs["canary"],
    ).set_display_name("report")
