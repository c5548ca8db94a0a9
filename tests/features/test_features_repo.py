"""feature_repo/ works with the plain Feast CLI and as a package for the pipeline."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from feast import FeatureStore

import feature_repo
from pipelines.features import build_feature_tables

REPO = Path(feature_repo.__file__).parent
FEAST = Path(sys.executable).parent / "feast"


def _feast(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(FEAST), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "feature_repo"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns("data", "__pycache__"))
    return copy


def test_feast_apply_needs_no_tables_and_materialize_incremental_serves_them(
    repo_copy: Path, world: Path, config
):
    env = {k: v for k, v in os.environ.items() if k != feature_repo.DATA_DIR_ENV}

    _feast(repo_copy, "apply", env=env)
    tables = build_feature_tables(world, repo_copy / "data", config)
    _feast(repo_copy, "materialize-incremental", tables.end.isoformat(), env=env)

    store = FeatureStore(repo_path=str(repo_copy))
    assert {v.name for v in store.list_feature_views()} == set(feature_repo.FEATURE_VIEWS)
    assert store.get_feature_service(feature_repo.RANKING) is not None
    online = store.get_online_features(
        features=["user_stats:user_impressions"], entity_rows=[{"user_id": 1}]
    ).to_dict()
    assert online["user_impressions"] == [5]


def test_tables_are_read_from_the_folder_named_by_the_environment(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(feature_repo.DATA_DIR_ENV, str(tmp_path))
    views = [o for o in feature_repo.definitions() if o.__class__.__name__ == "FeatureView"]
    assert {Path(v.batch_source.path).parent for v in views} == {tmp_path}


def test_definitions_point_every_source_at_the_given_folder(tmp_path: Path):
    objects = feature_repo.definitions(tmp_path)
    views = [o for o in objects if o.__class__.__name__ == "FeatureView"]
    assert [v.name for v in views] == list(feature_repo.FEATURE_VIEWS)
    assert all(Path(v.batch_source.path).parent == tmp_path for v in views)
    service = next(o for o in objects if o.__class__.__name__ == "FeatureService")
    assert [p.name for p in service.feature_view_projections] == list(feature_repo.FEATURE_VIEWS)


def test_data_folder_defaults_to_data_next_to_the_definitions(monkeypatch):
    monkeypatch.delenv(feature_repo.DATA_DIR_ENV, raising=False)
    assert feature_repo.feature_data_dir() == REPO / "data"


def test_relative_data_folder_is_rejected_with_the_fix(monkeypatch):
    monkeypatch.setenv(feature_repo.DATA_DIR_ENV, "relative/dir")
    with pytest.raises(ValueError, match="absolute"):
        feature_repo.feature_data_dir()


def test_an_object_store_address_is_taken_as_the_data_folder(monkeypatch):
    monkeypatch.setenv(feature_repo.DATA_DIR_ENV, "s3://recforge-features/offline/")
    data_dir = feature_repo.feature_data_dir()
    assert data_dir == "s3://recforge-features/offline"
    assert feature_repo.table_path(data_dir, "user_stats") == (
        "s3://recforge-features/offline/user_stats.parquet"
    )
