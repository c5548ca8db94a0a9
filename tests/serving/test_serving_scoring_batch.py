"""Requests ready together on the predictor's event loop are scored in one forward pass, each with
the scores it gets alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from models.artifact import LoadedModel
from serving.feature_source import PreparedRows, assemble_context
from serving.predictor import RankingPredictor
from serving.protocol import DEFAULT_LIMITS, parse_request
from serving.scoring_batch import BatchedScoring, _passes
from tests.serving.conftest import ONLINE_ITEMS, ONLINE_USERS

CONTEXTS = ({"device": "mobile", "hour": 13}, {"device": "desktop", "surface": "home"}, None)


@pytest.fixture(scope="module")
def predictor(tiny_artifact, sqlite_feast_repo) -> Iterator[RankingPredictor]:
    served = RankingPredictor("ranker", tiny_artifact, feature_repo=sqlite_feast_repo)
    served.load()
    yield served
    served.source.close()


def requests() -> list:
    """Users with their own candidates and contexts (one of them the defaults)."""
    bodies = []
    for k, user in enumerate((*ONLINE_USERS, 999_999)):
        instance = {"user_id": user, "item_ids": list(np.roll(ONLINE_ITEMS, k))[: 5 - k % 3]}
        if CONTEXTS[k % 3] is not None:
            instance["context"] = CONTEXTS[k % 3]
        bodies.append({"instances": [instance]})
    return [parse_request(body, DEFAULT_LIMITS) for body in bodies]


def count_passes(monkeypatch) -> list[int]:
    """The number of requests in each forward pass from now on."""
    passes: list[int] = []
    together = LoadedModel.score_prepared_together

    def counted(self, contexts, items, rows):
        passes.append(len(contexts))
        return together(self, contexts, items, rows)

    monkeypatch.setattr(LoadedModel, "score_prepared_together", counted)
    return passes


def test_requests_answered_together_get_the_scores_each_gets_alone(predictor, monkeypatch):
    parsed = requests()
    assert all(
        predictor.source.lookup(r.instances[0].user_id, r.instances[0].item_ids).items is not None
        for r in parsed
    ), "the candidates are in the prepared item table"
    alone = [predictor.rank(r).results[0] for r in parsed]
    passes = count_passes(monkeypatch)

    async def all_at_once() -> list:
        return await asyncio.gather(*(predictor.predict(r) for r in parsed))

    answers = [response.results[0] for response in asyncio.run(all_at_once())]
    assert sum(passes) == len(parsed)  # how many passes depends on when the store answers
    for mine, expected in zip(answers, alone, strict=True):
        np.testing.assert_array_equal(mine.item_ids, expected.item_ids)
        for task, scores in expected.scores.items():
            np.testing.assert_allclose(mine.scores[task], scores, rtol=1e-5, atol=1e-6)


def test_requests_waiting_together_share_one_pass(predictor, monkeypatch):
    instances = [r.instances[0] for r in requests()]
    passes = count_passes(monkeypatch)
    batched = BatchedScoring(predictor.model, predictor.source, ThreadPoolExecutor(1))

    async def all_at_once() -> list:
        return await asyncio.gather(*(batched.score(i) for i in instances))

    answers = asyncio.run(all_at_once())
    assert passes == [len(instances)]
    for instance, (found, scores) in zip(instances, answers, strict=True):
        alone = predictor.model.score_prepared(
            assemble_context(instance, found.user), found.items.prepared, found.items.rows
        )
        for task, expected in alone.items():
            np.testing.assert_allclose(scores[task], expected, rtol=1e-5, atol=1e-6)


def test_requests_arriving_during_a_batch_form_the_next(predictor, monkeypatch):
    instances = [r.instances[0] for r in requests()]
    passes = count_passes(monkeypatch)
    batched = BatchedScoring(predictor.model, predictor.source, ThreadPoolExecutor(1))

    async def one_then_the_rest() -> None:
        first = asyncio.ensure_future(batched.score(instances[0]))
        await asyncio.sleep(0)  # the first batch starts: its store read is under way
        await asyncio.gather(first, *(batched.score(i) for i in instances[1:]))

    asyncio.run(one_then_the_rest())
    assert passes == [1, len(instances) - 1]


def test_a_burst_is_served_in_batches_of_at_most_max_requests(predictor, monkeypatch):
    instances = [r.instances[0] for r in requests()] * 3
    passes = count_passes(monkeypatch)
    batched = BatchedScoring(predictor.model, predictor.source, ThreadPoolExecutor(1), max_requests=4)

    async def all_at_once() -> list:
        return await asyncio.gather(*(batched.score(i) for i in instances))

    answers = asyncio.run(all_at_once())
    assert passes == [4] * (len(instances) // 4) + ([len(instances) % 4] if len(instances) % 4 else [])
    assert all(found.degraded is None for found, _ in answers)


def test_one_request_alone_is_scored_alone(predictor, monkeypatch):
    passes = count_passes(monkeypatch)
    for request in requests():
        asyncio.run(predictor.predict(request))
    assert passes == [1] * len(requests())


def test_a_failing_pass_fails_each_of_its_requests(predictor, monkeypatch):
    def broken(self, contexts, items, rows):
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(LoadedModel, "score_prepared_together", broken)

    async def all_at_once() -> list:
        return await asyncio.gather(*(predictor.predict(r) for r in requests()), return_exceptions=True)

    outcomes = asyncio.run(all_at_once())
    assert all(isinstance(o, RuntimeError) for o in outcomes)


class Held:
    def __init__(self, prepared: object, n: int) -> None:
        self.items = PreparedRows(prepared, np.zeros(n, dtype=np.int64))


def test_passes_hold_one_table_each_and_at_most_max_candidates():
    old, new = object(), object()
    sizes = [(old, 300), (new, 10), (old, 300), (old, 500), (new, 20), (old, 2_500)]
    waiting = [(k, Held(table, n), None) for k, (table, n) in enumerate(sizes)]
    passes = _passes(waiting, max_candidates=1_000)
    assert [[entry[0] for entry in batch] for batch in passes] == [[0, 2], [3], [5], [1, 4]]
