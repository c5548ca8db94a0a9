"""Random and adversarial indices and offsets never crash the CPU backend: it either agrees
with the reference or raises a clear error; with bounds_check="off" it still never crashes."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops import FusedEmbeddingBag, IndexOutOfRangeError


@st.composite
def calls(draw):
    T = draw(st.integers(1, 3))
    rows = draw(st.lists(st.integers(1, 6), min_size=T, max_size=T))
    dims = draw(st.lists(st.integers(1, 9), min_size=T, max_size=T))
    B = draw(st.integers(0, 4))
    n = draw(st.integers(0, 16))
    indices = draw(st.lists(st.integers(-3, 8), min_size=n, max_size=n))
    if draw(st.booleans()):  # well-formed offsets
        cuts = (
            sorted(draw(st.lists(st.integers(0, n), min_size=T * B - 1, max_size=T * B - 1)))
            if T * B > 0
            else []
        )
        offsets = [0, *cuts, n] if T * B > 0 else [n]
    else:  # anything, of any length
        offsets = draw(st.lists(st.integers(-4, n + 4), min_size=0, max_size=T * B + 3))
    return {
        "rows": rows,
        "dims": dims,
        "indices": torch.tensor(indices, dtype=draw(st.sampled_from([torch.int32, torch.int64]))),
        "offsets": torch.tensor(offsets, dtype=torch.int64),
        "pooling": draw(st.sampled_from(["sum", "mean"])),
        "weighted": draw(st.booleans()),
        "optimizer": draw(st.sampled_from([None, "rowwise_adagrad", "adam"])),
    }


def _run(call: dict, backend: str, bounds_check: str):
    torch.manual_seed(0)
    bag = FusedEmbeddingBag(
        call["rows"],
        call["dims"],
        pooling=call["pooling"],
        backend=backend,
        optimizer=call["optimizer"],
        bounds_check=bounds_check,
    )
    n = call["indices"].numel()
    psw = torch.linspace(0.5, 1.5, n).requires_grad_() if call["weighted"] else None
    out = bag(call["indices"], call["offsets"], psw)
    out.sum().backward()
    return out.detach(), bag.weight.detach(), bag.weight.grad, None if psw is None else psw.grad


def _outcome(call: dict, backend: str, bounds_check: str):
    try:
        return _run(call, backend, bounds_check)
    except (ValueError, TypeError, IndexOutOfRangeError) as error:
        assert str(error)
        return type(error)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(calls())
def test_cpu_agrees_with_reference_or_both_raise_the_same_error(call):
    ours = _outcome(call, "cpu", "raise")
    expected = _outcome(call, "reference", "raise")

    if isinstance(expected, type):
        assert ours is expected
    else:
        torch.testing.assert_close(ours, expected)


@FUZZ
@given(calls())
def test_cpu_never_crashes_with_bounds_checking_off(call):
    try:
        _run(call, "cpu", "off")
    except ValueError as error:  # shape errors are still reported
        assert "offsets must have T*B+1 entries" in str(error)
