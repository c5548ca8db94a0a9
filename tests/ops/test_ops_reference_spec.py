"""The reference backend is the spec: it is checked here against torch's own EmbeddingBag and
optimizers, and the module's interface (init, table views, fused mode) is pinned down."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from embedding_cases import CASES, make_inputs

from ops import FusedEmbeddingBag

MIXED = CASES[0]


def _per_table_embedding_bag(bag: FusedEmbeddingBag, indices, offsets, psw, mode):
    """torch.nn.functional.embedding_bag table by table: an independent oracle."""
    T = bag.layout.num_tables
    B = (offsets.numel() - 1) // T
    outs = []
    for t in range(T):
        bounds = offsets[t * B : (t + 1) * B + 1]
        start, end = int(bounds[0]), int(bounds[-1])
        outs.append(
            F.embedding_bag(
                indices[start:end],
                bag.table(t),
                bounds - start,
                mode=mode,
                per_sample_weights=None if psw is None else psw[start:end],
                include_last_offset=True,
            )
        )
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("pooling, weighted", [("sum", False), ("sum", True), ("mean", False)])
def test_reference_matches_torch_embedding_bag_forward_and_gradients(pooling, weighted):
    torch.manual_seed(0)
    bag = FusedEmbeddingBag(list(MIXED.rows), list(MIXED.dims), pooling=pooling, backend="reference")
    x = make_inputs(MIXED, weighted=weighted)
    grad_out = torch.randn(MIXED.batch_size, sum(MIXED.dims))

    out = bag(x.indices, x.offsets, x.per_sample_weights)
    (out * grad_out).sum().backward()
    ours = bag.weight.grad.clone()
    bag.weight.grad = None
    expected = _per_table_embedding_bag(bag, x.indices, x.offsets, x.per_sample_weights, pooling)
    (expected * grad_out).sum().backward()

    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(ours, bag.weight.grad)


def _covering_batch(rows: tuple[int, ...], batch_size: int = 3, seed: int = 0):
    """Sample 0 of every table holds all of its rows, so every row is touched in each step."""
    g = torch.Generator().manual_seed(seed)
    bags = []
    for e in rows:
        bags.append(torch.arange(e))
        bags.extend(
            torch.randint(0, e, (int(torch.randint(0, 5, (1,), generator=g)),), generator=g)
            for _ in range(batch_size - 1)
        )
    lengths = torch.tensor([len(b) for b in bags])
    return torch.cat(bags), torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])


def _rowwise_adagrad(lr: float, eps: float):
    """FBGEMM EXACT_ROWWISE_ADAGRAD on one [E, D] table: m += mean(g^2); w -= lr/(sqrt(m)+eps) g."""
    state: dict[int, torch.Tensor] = {}

    def step(t: int, table: torch.Tensor, grad: torch.Tensor) -> None:
        m = state.setdefault(t, torch.zeros(table.shape[0]))
        m += (grad * grad).mean(dim=1)
        table -= (lr / (m.sqrt() + eps))[:, None] * grad

    return step


TORCH_OPTIMIZERS = {
    "sgd": lambda p, lr, eps: torch.optim.SGD([p], lr=lr),
    "adagrad": lambda p, lr, eps: torch.optim.Adagrad([p], lr=lr, eps=eps),
    "adam": lambda p, lr, eps: torch.optim.Adam([p], lr=lr, eps=eps, betas=(0.9, 0.999)),
}


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad", "rowwise_adagrad", "adam"])
def test_reference_fused_optimizer_follows_the_textbook_update(optimizer):
    lr, eps = 0.05, 1e-8
    torch.manual_seed(0)
    fused = FusedEmbeddingBag(
        list(MIXED.rows), list(MIXED.dims), backend="reference", optimizer=optimizer, lr=lr, eps=eps
    )
    plain = FusedEmbeddingBag(list(MIXED.rows), list(MIXED.dims), backend="reference")
    plain.load_state_dict(fused.state_dict(), strict=False)
    if optimizer == "rowwise_adagrad":
        update = _rowwise_adagrad(lr, eps)

        def apply_update() -> None:
            with torch.no_grad():
                for t in range(plain.layout.num_tables):
                    a, b = plain.layout.weight_offsets[t], plain.layout.weight_offsets[t + 1]
                    update(t, plain.table(t), plain.weight.grad[a:b].view_as(plain.table(t)))
    else:
        torch_optimizer = TORCH_OPTIMIZERS[optimizer](plain.weight, lr, eps)
        apply_update = torch_optimizer.step

    for step in range(3):
        indices, offsets = _covering_batch(MIXED.rows, seed=step)
        grad_out = torch.randn(3, sum(MIXED.dims))
        (fused(indices, offsets) * grad_out).sum().backward()
        plain.weight.grad = None
        (plain(indices, offsets) * grad_out).sum().backward()
        apply_update()

    torch.testing.assert_close(fused.weight, plain.weight)


def test_manual_seed_reproduces_the_initial_weights():
    torch.manual_seed(7)
    first = FusedEmbeddingBag([100, 20], [8, 3])
    torch.manual_seed(7)
    second = FusedEmbeddingBag([100, 20], [8, 3])

    torch.testing.assert_close(first.weight, second.weight, rtol=0, atol=0)


def test_each_table_is_uniform_within_sqrt_one_over_its_dim():
    bag = FusedEmbeddingBag([2000, 2000], [4, 64])

    for t, dim in enumerate((4, 64)):
        bound = math.sqrt(1 / dim)
        assert bag.table(t).abs().max() <= bound
        assert bag.table(t).abs().max() > 0.95 * bound


def test_table_is_a_view_of_the_flat_weight():
    bag = FusedEmbeddingBag([3, 5], [2, 4])

    with torch.no_grad():
        bag.table(1)[4] = 7.0

    assert bag.table(1).shape == (5, 4)
    assert bag.table(1).data_ptr() == bag.weight.data_ptr() + 3 * 2 * bag.weight.element_size()
    assert torch.all(bag.weight[-4:] == 7.0)


def test_table_rejects_a_missing_table():
    bag = FusedEmbeddingBag([3, 5], [2, 4])

    with pytest.raises(IndexError, match=r"table must be an int in \[0, 2\)"):
        bag.table(2)


def test_fused_mode_updates_rows_in_backward_without_storing_a_gradient():
    bag = FusedEmbeddingBag([10], [4], optimizer="sgd", lr=0.1)
    before = bag.weight.detach().clone()

    out = bag(torch.tensor([3]), torch.tensor([0, 1]))
    out.sum().backward()

    assert out.requires_grad
    assert bag.weight.grad is None
    torch.testing.assert_close(bag.table(0)[3], before.view(10, 4)[3] - 0.1)
    torch.testing.assert_close(bag.weight.view(10, 4)[:3], before.view(10, 4)[:3])


def test_mean_of_an_empty_bag_is_zero():
    bag = FusedEmbeddingBag([10], [4], pooling="mean")

    out = bag(torch.tensor([1, 2]), torch.tensor([0, 0, 2]))

    assert torch.all(out[0] == 0)
    torch.testing.assert_close(out[1], bag.table(0)[1:3].mean(dim=0))
