"""Plain NumPy / SciPy references for ``fastembed.kernels`` (test support only).

Two kinds of reference:

* ``*_loop`` functions follow the kernels' documented arithmetic step by step
  (same dtype, same summation order), so the kernels must match them exactly;
* ``*_csr`` / ``*_dense`` functions are independent formulations (SciPy sparse
  matrix products, one-hot matrices, finite differences) that must match up
  to rounding.
"""

import numpy as np
import scipy.sparse as sp

# ---------------------------------------------------------------- lookups


def one_hot(ids, n_rows, dtype):
    """Dense ``(len(ids), n_rows)`` one-hot matrix."""
    m = np.zeros((len(ids), n_rows), dtype)
    m[np.arange(len(ids)), ids] = 1
    return m


def bag_matrix(indices, offsets, n_rows, mode, weights=None, dtype=np.float64):
    """The ``(n_bags, n_rows)`` CSR matrix with ``embedding_bag = M @ table``.

    Data: 1 ("sum"), the weights ("sum" with weights), 1 / bag size ("mean").
    Repeated ids in a bag are kept as duplicate entries (summed by products).
    """
    offsets = np.asarray(offsets, np.int64)
    counts = np.diff(offsets)
    if weights is not None:
        data = np.asarray(weights, dtype)
    elif mode == "mean":
        data = np.repeat(1.0 / np.maximum(counts, 1), counts).astype(dtype)
    else:
        data = np.ones(len(indices), dtype)
    return sp.csr_matrix(
        (data, np.asarray(indices, np.int64), offsets), shape=(len(counts), n_rows)
    )


def embedding_bag_csr(table, indices, offsets, mode, weights=None):
    """``bag_matrix(...) @ table``, computed in float64."""
    m = bag_matrix(indices, offsets, table.shape[0], mode, weights)
    return np.asarray(m @ table.astype(np.float64))


def embedding_bag_loop(table, indices, offsets, mode, weights=None):
    """Bag by bag, index by index, in the table's dtype (the kernel's order)."""
    T = table.dtype.type
    n_bags = len(offsets) - 1
    out = np.zeros((n_bags, table.shape[1]), table.dtype)
    for b in range(n_bags):
        acc = np.zeros(table.shape[1], table.dtype)
        for k in range(offsets[b], offsets[b + 1]):
            if weights is None:
                acc = acc + table[indices[k]]
            else:
                acc = acc + T(weights[k]) * table[indices[k]]
        count = offsets[b + 1] - offsets[b]
        if mode == "mean" and count > 0:
            acc = acc / T(count)
        out[b] = acc
    return out


def embedding_bag_reduceat(table, indices, offsets):
    """The NumPy formulation of the issue: reduceat of gathered rows / counts (mean)."""
    counts = np.diff(offsets)
    out = np.zeros((len(counts), table.shape[1]), np.float64)
    nonempty = counts > 0
    if nonempty.any():
        sums = np.add.reduceat(table[indices].astype(np.float64), offsets[:-1][nonempty], axis=0)
        out[nonempty] = sums / counts[nonempty, None]
    return out


# ---------------------------------------------------------------- gradients


def bag_grad_csr(grad_out, indices, offsets, mode, weights=None):
    """``(M.T @ grad_out)`` restricted to the touched rows, in float64."""
    indices = np.asarray(indices)
    n_rows = int(indices.max()) + 1 if len(indices) else 0
    m = bag_matrix(indices, offsets, n_rows, mode, weights)
    dense = np.asarray(m.T @ grad_out.astype(np.float64))
    rows = np.unique(indices)
    return rows, dense[rows]


def bag_grad_loop(grad_out, indices, offsets, mode, weights=None):
    """Per-index contributions ``c_k * grad_out[bag(k)]`` summed per row in position order.

    ``c_k``: the weight, ``T(1) / T(len(bag))`` ("mean"), or 1; each row's sum
    starts from zeros, as in the kernel.
    """
    T = grad_out.dtype.type
    rows = np.unique(np.asarray(indices))
    where = {int(r): u for u, r in enumerate(rows)}
    out = np.zeros((len(rows), grad_out.shape[1]), grad_out.dtype)
    for b in range(len(offsets) - 1):
        count = offsets[b + 1] - offsets[b]
        for k in range(offsets[b], offsets[b + 1]):
            if weights is not None:
                c = T(weights[k])
            elif mode == "mean":
                c = T(1) / T(count)
            else:
                c = T(1)
            u = where[int(indices[k])]
            out[u] = out[u] + c * grad_out[b]
    return rows.astype(np.asarray(indices).dtype), out


def bag_grad_finite_diff(table, indices, offsets, mode, grad_out, weights=None, h=1e-6):
    """Central differences of ``sum(grad_out * embedding_bag_csr(table))`` (float64).

    Returns the dense gradient ``(n_rows, dim)``.
    """
    table = table.astype(np.float64)
    grad_out = grad_out.astype(np.float64)

    def f(t):
        return float(np.sum(grad_out * embedding_bag_loop(t, indices, offsets, mode, weights)))

    g = np.zeros_like(table)
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            tp = table.copy()
            tm = table.copy()
            tp[i, j] += h
            tm[i, j] -= h
            g[i, j] = (f(tp) - f(tm)) / (2 * h)
    return g


# ---------------------------------------------------------------- coalesce + updates


def coalesce_loop(rows, row_grads):
    """Sorted unique rows; each row's gradients summed in position order from the first."""
    rows = np.asarray(rows)
    uniq = np.unique(rows)
    out = np.zeros((len(uniq), row_grads.shape[1]), row_grads.dtype)
    seen = {}
    for k, r in enumerate(rows):
        u = int(np.searchsorted(uniq, r))
        if u in seen:
            out[u] = out[u] + row_grads[k]
        else:
            out[u] = row_grads[k]
            seen[u] = True
    return uniq.astype(rows.dtype), out


def coalesce_dense(rows, row_grads, n_rows):
    """``np.add.at`` into a dense ``(n_rows, dim)`` float64 array."""
    dense = np.zeros((n_rows, row_grads.shape[1]), np.float64)
    np.add.at(dense, np.asarray(rows, np.int64), row_grads.astype(np.float64))
    return dense


def sgd_loop(table, rows, row_grads, lr):
    """Coalesce, then ``table[r] -= T(lr) * g`` row by row (in place)."""
    T = table.dtype.type
    for r, g in zip(*coalesce_loop(rows, row_grads)):
        table[r] = table[r] - T(lr) * g


def adagrad_loop(table, state, rows, row_grads, lr, eps=1e-10):
    """Coalesce, then PyTorch's sparse Adagrad row by row (in place)."""
    T = table.dtype.type
    for r, g in zip(*coalesce_loop(rows, row_grads)):
        s = state[r] + g * g
        state[r] = s
        table[r] = table[r] - T(lr) * (g / (np.sqrt(s) + T(eps)))


def rowwise_adagrad_loop(table, state, rows, row_grads, lr, eps=1e-10):
    """Coalesce, then FBGEMM's row-wise Adagrad row by row (in place).

    ``mean(g*g)`` is a sequential sum in the table's dtype divided by dim.
    """
    T = table.dtype.type
    dim = table.shape[1]
    for r, g in zip(*coalesce_loop(rows, row_grads)):
        sq = T(0)
        for x in g * g:
            sq = T(sq + x)
        if dim > 0:
            sq = T(sq / T(dim))
        s = T(state[r] + sq)
        state[r] = s
        mult = T(T(lr) / T(np.sqrt(s) + T(eps)))
        table[r] = table[r] - mult * g


def adagrad_dense(table, state, rows, row_grads, lr, eps=1e-10):
    """Independent float64 formulation: dense gradient, masked element-wise update."""
    t = table.astype(np.float64)
    s = state.astype(np.float64)
    g = coalesce_dense(rows, row_grads, table.shape[0])
    touched = np.zeros(table.shape[0], bool)
    touched[np.asarray(rows, np.int64)] = True
    s[touched] += g[touched] ** 2
    t[touched] -= lr * g[touched] / (np.sqrt(s[touched]) + eps)
    return t, s
