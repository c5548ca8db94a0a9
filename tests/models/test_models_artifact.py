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
