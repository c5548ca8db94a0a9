import json

import numpy as np
import pytest

from models.artifact import ArtifactError, load_artifact, save_artifact

from factories import frame_columns


def test_artifact_round_trip_gives_identical_scores(tiny_artifact):
    model = load_artifact(tiny_artifact)
    frame = frame_columns(model, rows=7)
    first = model.score(frame)
    second = load_artifact(tiny_artifact).score(frame)
    for task in model.tasks:
        np.testing.assert_array_equal(first[task], second[task])
        assert first[task].dtype == np.float32 and first[task].shape == (7,)


def test_artifact_has_no_pickle_and_a_checksum_manifest(tiny_artifact):
    names = {p.name for p in tiny_artifact.iterdir()}
    assert {"model.safetensors", "config.json", "metrics.json", "manifest.json"} <= names
    manifest = json.loads((tiny_artifact / "manifest.json").read_text())["sha256"]
    assert set(manifest) == names - {"manifest.json"}
    assert not any(name.endswith((".pt", ".pkl", ".pth")) for name in names)


def test_a_modified_weight_file_is_refused(tiny_artifact, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_artifact, copy)
    with open(copy / "model.safetensors", "r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(ArtifactError, match="does not match its sha256"):
        load_artifact(copy)


def test_saving_over_an_existing_artifact_is_refused(tiny_artifact):
    model = load_artifact(tiny_artifact)
    with pytest.raises(ArtifactError, match="not empty"):
        save_artifact(model.network, tiny_artifact, name="x", version="y")


def test_unknown_ids_and_missing_features_are_scored_with_defaults(tiny_artifact):
    model = load_artifact(tiny_artifact)
    frame = {"user_id": [10**12, -5], "item_id": [10**12, 3], "device": ["toaster", None]}
    scores = model.score(frame)
    for task in model.tasks:
        assert np.all(np.isfinite(scores[task])) and np.all((scores[task] > 0) & (scores[task] < 1))


def test_column_sources_name_every_required_column_once(tiny_artifact):
    model = load_artifact(tiny_artifact)
    listed = [c for columns in model.column_sources.values() for c in columns]
    assert sorted(listed) == sorted(model.required_columns)
    assert "device" in model.column_sources["request"]
    assert "text_embedding" in model.column_sources["item"]


def _rewrite_config(artifact, destination, change):
    import hashlib
    import shutil

    shutil.copytree(artifact, destination)
    config = json.loads((destination / "config.json").read_text())
    change(config["model"])
    (destination / "config.json").write_text(json.dumps(config))
    manifest = json.loads((destination / "manifest.json").read_text())
    manifest["sha256"]["config.json"] = hashlib.sha256(
        (destination / "config.json").read_bytes()).hexdigest()
    (destination / "manifest.json").write_text(json.dumps(manifest))


def test_an_artifact_written_before_task_types_and_scenarios_still_loads(tiny_artifact, tmp_path):
    def drop_new_fields(model):
        for key in ("task_types", "specific_experts", "num_levels", "scenario_feature"):
            model.pop(key)

    _rewrite_config(tiny_artifact, tmp_path / "v1", drop_new_fields)
    old = load_artifact(tmp_path / "v1")
    frame = frame_columns(old, rows=5)
    np.testing.assert_array_equal(old.score(frame)["click"],
                                  load_artifact(tiny_artifact).score(frame)["click"])


def test_an_artifact_from_a_newer_version_is_refused_by_name(tiny_artifact, tmp_path):
    _rewrite_config(tiny_artifact, tmp_path / "future", lambda model: model.update(hyper=1))
    with pytest.raises(ArtifactError, match=r"model fields \['hyper'\] are unknown"):
        load_artifact(tmp_path / "future")
