"""Triton kernels of the fused embedding bag: one program per bag (forward, per-sample-weight
gradient) or per touched row (backward, dense gradient or fused optimizer). The same math as
csrc/common/row_update.h. `tables` is the int64 [5, T] layout from backends/device_inputs.py.

Imported lazily by the triton backend; with TRITON_INTERPRET=1 set before the import the kernels
run in Triton's interpreter on CPU tensors (that is how the tests run them without a GPU)."""

from __future__ import annotations

import triton
import triton.language as tl

UPDATES = {name: code for code, name in enumerate(("gradient", "sgd", "adagrad", "rowwise_adagrad", "adam"))}
# A compiled kernel may read a module global only when it is a tl.constexpr (the interpreter
# reads any global, so only a GPU run catches a plain int here).
GRADIENT, SGD, ADAGRAD, ROWWISE_ADAGRAD, ADAM = (tl.constexpr(code) for code in UPDATES.values())


# Only Triton builtins and jit functions of this module are used: Triton's own jit library
# functions (tl.zeros, tl.sum) are decorated when triton is imported, so they would not follow
# TRITON_INTERPRET set later, when a test switches the interpreter on.
@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _bag_range(offsets, k, num_indices):
    """Positions [begin, end) of bag k, clamped to the indices."""
    begin = tl.minimum(tl.maximum(tl.load(offsets + k), 0), num_indices)
    end = tl.maximum(tl.minimum(tl.maximum(tl.load(offsets + k + 1), 0), num_indices), begin)
    return begin, end


@triton.jit
def forward_kernel(
    indices,
    offsets,
    psw,
    weights,
    out,
    tables,
    T,
    B,
    total_dim,
    num_indices,
    HAS_PSW: tl.constexpr,
    MEAN: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    k = tl.program_id(0)
    t = k // B
    rows = tl.load(tables + t)
    D = tl.load(tables + T + t)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_row = d < D
    table = weights + tl.load(tables + 2 * T + t)
    begin, end = _bag_range(offsets, k, num_indices)
    acc = tl.full([BLOCK_D], 0, out.dtype.element_ty)
    for j in range(begin, end):
        index = tl.load(indices + j).to(tl.int64)
        valid = (index >= 0) & (index < rows)
        row = tl.load(
            table + tl.where(valid, index, 0) * D + d, mask=tl.where(valid, in_row, False), other=0.0
        )
        if HAS_PSW:
            row = row * tl.load(psw + j)
        acc += row
    if MEAN:
        acc = acc / tl.maximum(end - begin, 1)
    tl.store(out + (k % B) * total_dim + tl.load(tables + 3 * T + t) + d, acc, mask=in_row)


@triton.jit
def psw_grad_kernel(
    indices,
    offsets,
    grad_out,
    weights,
    grad_psw,
    tables,
    T,
    B,
    total_dim,
    num_indices,
    MEAN: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    k = tl.program_id(0)
    t = k // B
    rows = tl.load(tables + t)
    D = tl.load(tables + T + t)
    d = tl.arange(0, BLOCK_D)
    in_row = d < D
    table = weights + tl.load(tables + 2 * T + t)
    g = tl.load(grad_out + (k % B) * total_dim + tl.load(tables + 3 * T + t) + d, mask=in_row, other=0.0)
    begin, end = _bag_range(offsets, k, num_indices)
    for j in range(begin, end):
        index = tl.load(indices + j).to(tl.int64)
        valid = (index >= 0) & (index < rows)
        row = tl.load(
            table + tl.where(valid, index, 0) * D + d, mask=tl.where(valid, in_row, False), other=0.0
        )
        dot = tl.reduce(g * row, 0, _add)
        if MEAN:
            dot = dot / tl.maximum(end - begin, 1)
        tl.store(grad_psw + j, dot)


@triton.jit
def backward_kernel(
    positions,
    begin,
    segment_row,
    bag_of_position,
    psw,
    offsets,
    grad_out,
    target,
    m1,
    m2,
    tables,
    T,
    B,
    total_dim,
    total_rows,
    num_indices,
    coefs,
    HAS_PSW: tl.constexpr,
    MEAN: tl.constexpr,
    UPDATE: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    u = tl.program_id(0)
    # The optimizer's scalars come as a tensor of the weights' dtype: Triton would take Python
    # floats as float32, which float64 weights would notice.
    lr = tl.load(coefs)
    eps = tl.load(coefs + 1)
    beta1 = tl.load(coefs + 2)
    beta2 = tl.load(coefs + 3)
    one_minus_beta1 = tl.load(coefs + 4)
    one_minus_beta2 = tl.load(coefs + 5)
    bias1 = tl.load(coefs + 6)
    bias2 = tl.load(coefs + 7)
    global_row = tl.load(segment_row + u)
    if global_row < total_rows:  # the last segment may collect the invalid indices
        first = tl.load(begin + u)
        last = tl.load(begin + u + 1)
        t = tl.load(bag_of_position + tl.load(positions + first)) // B
        D = tl.load(tables + T + t)
        row = global_row - tl.load(tables + 4 * T + t)
        d = tl.arange(0, BLOCK_D)
        in_row = d < D
        column = tl.load(tables + 3 * T + t)
        g = tl.full([BLOCK_D], 0, target.dtype.element_ty)
        for j in range(first, last):
            position = tl.load(positions + j)
            k = tl.load(bag_of_position + position)
            grad = tl.load(grad_out + (k % B) * total_dim + column + d, mask=in_row, other=0.0)
            if HAS_PSW:
                grad = grad * tl.load(psw + position)
            if MEAN:
                bag_begin, bag_end = _bag_range(offsets, k, num_indices)
                grad = grad / tl.maximum(bag_end - bag_begin, 1)
            g += grad
        at = tl.load(tables + 2 * T + t) + row * D + d
        if UPDATE == GRADIENT:
            tl.store(target + at, g, mask=in_row)
        elif UPDATE == SGD:
            w = tl.load(target + at, mask=in_row)
            tl.store(target + at, w - lr * g, mask=in_row)
        elif UPDATE == ADAGRAD:
            m = tl.load(m1 + at, mask=in_row) + g * g
            tl.store(m1 + at, m, mask=in_row)
            w = tl.load(target + at, mask=in_row)
            tl.store(target + at, w - lr * g / (tl.sqrt(m) + eps), mask=in_row)
        elif UPDATE == ROWWISE_ADAGRAD:
            state = m1 + global_row
            m = tl.load(state) + tl.reduce(g * g, 0, _add) / D
            tl.store(state, m)
            w = tl.load(target + at, mask=in_row)
            tl.store(target + at, w - lr / (tl.sqrt(m) + eps) * g, mask=in_row)
        else:
            first_moment = beta1 * tl.load(m1 + at, mask=in_row) + one_minus_beta1 * g
            second_moment = beta2 * tl.load(m2 + at, mask=in_row) + one_minus_beta2 * g * g
            tl.store(m1 + at, first_moment, mask=in_row)
            tl.store(m2 + at, second_moment, mask=in_row)
            w = tl.load(target + at, mask=in_row)
            step = lr * (first_moment / bias1) / (tl.sqrt(second_moment / bias2) + eps)
            tl.store(target + at, w - step, mask=in_row)
