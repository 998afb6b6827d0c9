"""Tests of fastembed.kernels against the NumPy / SciPy references in kernel_reference.py."""

import kernel_reference as ref
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

import fastembed.kernels as K
from fastembed.kernels import grouping, lookup, optim

FLOATS = [np.float32, np.float64]
INTS = [np.int32, np.int64]
COMBOS = [(f, i) for f in FLOATS for i in INTS]
COMBO_IDS = [f"{np.dtype(f).name}-{np.dtype(i).name}" for f, i in COMBOS]

# float64 results vs float64 references: tight; float32 vs float64 references: loose
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-5}, np.float64: {"rtol": 1e-12, "atol": 1e-12}}


def make_bags(rng, n_rows, n_bags, max_bag, idtype, empty_frac=0.2):
    sizes = rng.integers(0, max_bag + 1, n_bags)
    sizes[rng.random(n_bags) < empty_frac] = 0
    offsets = np.zeros(n_bags + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    indices = rng.integers(0, n_rows, int(offsets[-1])).astype(idtype)
    return indices, offsets


def make_table(rng, n_rows, dim, dtype):
    return rng.standard_normal((n_rows, dim)).astype(dtype)


def assert_same(actual, expected):
    """Bitwise equal values (up to the sign of zero), same dtype and shape."""
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_array_equal(actual, expected)


# ============================================================== gather


@pytest.mark.parametrize("dtype,idtype", COMBOS, ids=COMBO_IDS)
def test_gather_matches_fancy_indexing_and_one_hot(dtype, idtype):
    rng = np.random.default_rng(0)
    table = make_table(rng, 37, 5, dtype)
    ids = rng.integers(0, 37, 100).astype(idtype)
    out = K.gather(table, ids)
    assert_same(out, table[ids])
    assert_same(out, ref.one_hot(ids, 37, dtype) @ table)


def test_gather_edge_cases():
    table = np.arange(6, dtype=np.float32).reshape(1, 6)
    assert_same(K.gather(table, np.zeros(4, np.int64)), np.repeat(table, 4, axis=0))
    assert K.gather(table, np.empty(0, np.int32)).shape == (0, 6)
    assert K.gather(table, []).shape == (0, 6)
    assert_same(K.gather(table, [0, 0]), table[[0, 0]])  # lists are accepted
    t2 = np.ones((3, 0))
    assert K.gather(t2, np.array([2, 1])).shape == (2, 0)
    # other integer dtypes are converted
    t3 = make_table(np.random.default_rng(1), 10, 3, np.float64)
    assert_same(K.gather(t3, np.array([9, 0, 3], np.uint16)), t3[[9, 0, 3]])


# ============================================================== embedding_bag


@pytest.mark.parametrize("dtype,idtype", COMBOS, ids=COMBO_IDS)
@pytest.mark.parametrize("mode", ["mean", "sum", "weighted"])
def test_embedding_bag_matches_references(dtype, idtype, mode):
    rng = np.random.default_rng(1)
    table = make_table(rng, 50, 7, dtype)
    indices, offsets = make_bags(rng, 50, 40, 9, idtype)
    weights = rng.standard_normal(len(indices)).astype(dtype) if mode == "weighted" else None
    m = "sum" if mode == "weighted" else mode
    out = K.embedding_bag(table, indices, offsets, mode=m, per_sample_weights=weights)
    assert_same(out, ref.embedding_bag_loop(table, indices, offsets, m, weights))
    np.testing.assert_allclose(out, ref.embedding_bag_csr(table, indices, offsets, m, weights),
                               **TOL[dtype])
    counts = np.diff(offsets)
    assert np.all(out[counts == 0] == 0) and (counts == 0).any()


def test_embedding_bag_mean_matches_reduceat():
    rng = np.random.default_rng(2)
    table = make_table(rng, 100, 16, np.float64)
    indices, offsets = make_bags(rng, 100, 30, 20, np.int64)
    np.testing.assert_allclose(K.embedding_bag(table, indices, offsets),  # default mode="mean"
                               ref.embedding_bag_reduceat(table, indices, offsets), rtol=1e-12)


def test_embedding_bag_edge_cases():
    table = np.array([[1.0, 2.0]], np.float32)
    # no bags at all
    assert K.embedding_bag(table, np.empty(0, np.int64), np.array([0])).shape == (0, 2)
    # only empty bags
    out = K.embedding_bag(table, np.empty(0, np.int32), np.array([0, 0, 0]), mode="sum")
    assert_same(out, np.zeros((2, 2), np.float32))
    # 1-row table, repeated ids, int32 offsets
    out = K.embedding_bag(table, np.zeros(3, np.int32), np.array([0, 1, 3], np.int32), mode="sum")
    assert_same(out, np.array([[1, 2], [2, 4]], np.float32))
    out = K.embedding_bag(table, np.zeros(3, np.int32), np.array([0, 1, 3]), mode="mean")
    assert_same(out, np.array([[1, 2], [1, 2]], np.float32))
    # a large-ish case crosses the prefetch distance and uses both threads
    rng = np.random.default_rng(3)
    big = make_table(rng, 1000, 33, np.float32)
    indices, offsets = make_bags(rng, 1000, 500, 100, np.int64)
    assert_same(K.embedding_bag(big, indices, offsets, "mean"),
                ref.embedding_bag_loop(big, indices, offsets, "mean"))


# ============================================================== embedding_bag_grad


@pytest.mark.parametrize("dtype,idtype", COMBOS, ids=COMBO_IDS)
@pytest.mark.parametrize("mode", ["mean", "sum", "weighted"])
def test_embedding_bag_grad_matches_references(dtype, idtype, mode):
    rng = np.random.default_rng(4)
    indices, offsets = make_bags(rng, 60, 30, 12, idtype)
    grad_out = rng.standard_normal((30, 6)).astype(dtype)
    weights = rng.standard_normal(len(indices)).astype(dtype) if mode == "weighted" else None
    m = "sum" if mode == "weighted" else mode
    rows, g = K.embedding_bag_grad(grad_out, indices, offsets, mode=m, per_sample_weights=weights)
    exp_rows, exp_g = ref.bag_grad_loop(grad_out, indices, offsets, m, weights)
    assert_same(rows, exp_rows)
    assert_same(g, exp_g)
    csr_rows, csr_g = ref.bag_grad_csr(grad_out, indices, offsets, m, weights)
    np.testing.assert_array_equal(rows, csr_rows)
    np.testing.assert_allclose(g, csr_g, **TOL[dtype])


@pytest.mark.parametrize("mode", ["mean", "sum", "weighted"])
def test_embedding_bag_grad_finite_differences(mode):
    rng = np.random.default_rng(5)
    n_rows, dim = 6, 3
    table = make_table(rng, n_rows, dim, np.float64)
    indices = np.array([0, 2, 2, 5, 1, 2, 0], np.int64)
    offsets = np.array([0, 3, 3, 5, 7])  # includes an empty bag
    grad_out = rng.standard_normal((4, dim))
    weights = rng.standard_normal(len(indices)) if mode == "weighted" else None
    m = "sum" if mode == "weighted" else mode
    rows, g = K.embedding_bag_grad(grad_out, indices, offsets, m, weights)
    fd = ref.bag_grad_finite_diff(table, indices, offsets, m, grad_out, weights)
    np.testing.assert_array_equal(rows, [0, 1, 2, 5])
    np.testing.assert_allclose(g, fd[rows], rtol=1e-6, atol=1e-8)
    untouched = np.setdiff1d(np.arange(n_rows), rows)
    np.testing.assert_allclose(fd[untouched], 0, atol=1e-8)


def test_embedding_bag_grad_is_the_adjoint_of_embedding_bag():
    # <grad_out, bag(table)> == <row_grads, table[rows]> for any table (linearity)
    rng = np.random.default_rng(6)
    indices, offsets = make_bags(rng, 500, 200, 30, np.int64)
    table = make_table(rng, 500, 8, np.float64)
    grad_out = rng.standard_normal((200, 8))
    for mode in ("mean", "sum"):
        rows, g = K.embedding_bag_grad(grad_out, indices, offsets, mode)
        lhs = np.sum(grad_out * K.embedding_bag(table, indices, offsets, mode))
        assert np.isclose(lhs, np.sum(g * table[rows]), rtol=1e-10)


def test_embedding_bag_grad_edge_cases():
    g0 = np.ones((0, 4), np.float32)
    rows, g = K.embedding_bag_grad(g0, np.empty(0, np.int32), np.array([0]))
    assert rows.shape == (0,) and rows.dtype == np.int32 and g.shape == (0, 4)
    rows, g = K.embedding_bag_grad(np.ones((2, 4)), np.empty(0, np.int64), np.array([0, 0, 0]))
    assert rows.shape == (0,) and g.shape == (0, 4)
    # ids far apart: the grouping falls back from counting to radix sort
    idx = np.array([7, 10**12, 7, 3], np.int64)
    go = np.arange(8, dtype=np.float64).reshape(2, 4)
    rows, g = K.embedding_bag_grad(go, idx, np.array([0, 2, 4]), "sum")
    np.testing.assert_array_equal(rows, [3, 7, 10**12])
    assert_same(g, np.array([go[1], go[0] + go[1], go[0]]))


def test_embedding_bag_grad_wide_span_weighted():
    # radix-sort path with positions kept for the weights
    rng = np.random.default_rng(17)
    idx = rng.choice(np.array([5, 2**40, 3 * 2**33, 7, 2**50]), 60).astype(np.int64)
    offsets = np.array([0, 10, 10, 25, 60])
    grad_out = rng.standard_normal((4, 3))
    weights = rng.standard_normal(60)
    rows, g = K.embedding_bag_grad(grad_out, idx, offsets, "sum", weights)
    er, eg = ref.bag_grad_loop(grad_out, idx, offsets, "sum", weights)
    assert_same(rows, er)
    assert_same(g, eg)
    assert not grouping.use_counting(len(idx), idx.min(), idx.max())


def test_raw_kernels_overwrite_reused_buffers():
    rng = np.random.default_rng(18)
    table = make_table(rng, 40, 5, np.float32)
    indices, offsets = make_bags(rng, 40, 25, 9, np.int64)
    w = np.empty(0, np.float32)
    out = np.full((25, 5), np.nan, np.float32)
    res = lookup.embedding_bag_kernel(table, indices, offsets, w, False, True, out)
    assert res is out
    assert_same(out, ref.embedding_bag_loop(table, indices, offsets, "mean"))
    buf = np.full((len(indices), 5), np.inf, np.float32)
    assert_same(lookup.gather_kernel(table, indices, buf), table[indices])
    rows, g = lookup.embedding_bag_grad_unchecked(table[:25].copy(), indices, offsets, w, False, False)
    er, eg = ref.bag_grad_loop(table[:25].copy(), indices, offsets, "sum")
    assert_same(rows, er)
    assert_same(g, eg)


@pytest.mark.jit_only
def test_kernels_are_cached_nogil_and_exact():
    dispatchers = [
        f for mod in (lookup, optim) for f in vars(mod).values()
        if isinstance(f, numba.core.dispatcher.Dispatcher)
    ]
    assert len(dispatchers) >= 15
    for f in dispatchers:
        name = f.py_func.__name__
        assert type(f._cache).__name__ != "NullCache", f"{name} is not cache=True"
        assert f.targetoptions.get("nogil"), f"{name} is not nogil"
        assert not f.targetoptions.get("fastmath"), f"{name} uses fastmath"
    for f in (optim.sgd_row, optim.adagrad_row, optim.rowwise_adagrad_row):
        assert not f.targetoptions.get("parallel")


# ============================================================== coalesce


@pytest.mark.parametrize("dtype,idtype", COMBOS, ids=COMBO_IDS)
def test_coalesce_matches_references(dtype, idtype):
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 30, 200).astype(idtype)
    grads = rng.standard_normal((200, 5)).astype(dtype)
    u, s = K.coalesce(rows, grads)
    eu, es = ref.coalesce_loop(rows, grads)
    assert_same(u, eu)
    assert_same(s, es)
    np.testing.assert_allclose(s, ref.coalesce_dense(rows, grads, 30)[u], **TOL[dtype])


def test_coalesce_paths_agree():
    rng = np.random.default_rng(8)
    grads = rng.standard_normal((300, 3))
    small = rng.integers(0, 50, 300)
    # same grouping with a huge span (radix sort path) as with a small one (counting path)
    huge = small * (10**12 // 50)
    u1, s1 = K.coalesce(small, grads)
    u2, s2 = K.coalesce(huge, grads)
    np.testing.assert_array_equal(u1 * (10**12 // 50), u2)
    assert_same(s1, s2)
    assert_same(s2, ref.coalesce_loop(huge, grads)[1])
    # already sorted unique: returned as copies
    r = np.array([1, 4, 9], np.int32)
    g = rng.standard_normal((3, 3))
    u, s = K.coalesce(r, g)
    assert_same(u, r) and assert_same(s, g)
    assert not np.shares_memory(u, r) and not np.shares_memory(s, g)
    # empty, and sorted but repeated
    u, s = K.coalesce(np.empty(0, np.int64), np.empty((0, 2)))
    assert u.shape == (0,) and s.shape == (0, 2)
    u, s = K.coalesce(np.array([2, 2, 2]), np.ones((3, 2), np.float32))
    assert_same(u, np.array([2])) and assert_same(s, np.full((1, 2), 3, np.float32))
    # non-contiguous grads are accepted (copied)
    g2 = rng.standard_normal((4, 6))[:, ::2]
    assert_same(K.coalesce(np.array([1, 0, 1, 0]), g2)[1],
                ref.coalesce_loop(np.array([1, 0, 1, 0]), g2)[1])


@pytest.mark.parametrize("idtype", INTS)
@pytest.mark.parametrize("span", [10, 10**5, 2**31 - 1, 2**40, 2**62])
def test_group_ids_is_a_stable_argsort(idtype, span):
    rng = np.random.default_rng(span % 1000)
    span = min(span, np.iinfo(idtype).max)
    ids = rng.choice(rng.integers(0, span, 50, dtype=np.int64), 400).astype(idtype)
    lo, hi, _ = grouping.scan_ids(ids)
    uniq, starts, order = grouping.group_ids(ids, lo, hi)
    np.testing.assert_array_equal(order, np.argsort(ids, kind="stable"))
    assert_same(uniq, np.unique(ids))
    np.testing.assert_array_equal(starts, np.searchsorted(ids[order], uniq).tolist() + [len(ids)])


def test_raw_coalesce_accepts_any_int64():
    # the raw kernel works over the whole int64 range (the public API rejects negatives)
    info = np.iinfo(np.int64)
    rows = np.array([info.max, info.min, -1, info.max, 0, info.min], np.int64)
    g = np.arange(12, dtype=np.float64).reshape(6, 2)
    u, s = grouping.coalesce_unchecked(rows, g)
    eu, es = ref.coalesce_loop(rows, g)
    assert_same(u, eu)
    assert_same(s, es)


# ============================================================== updates


def _update_case(rng, dtype, idtype, n_rows=40, dim=6, n=120):
    table = make_table(rng, n_rows, dim, dtype)
    rows = rng.integers(0, n_rows, n).astype(idtype)
    grads = rng.standard_normal((n, dim)).astype(dtype)
    return table, rows, grads


@pytest.mark.parametrize("dtype,idtype", COMBOS, ids=COMBO_IDS)
def test_sgd_update_matches_loop(dtype, idtype):
    rng = np.random.default_rng(9)
    table, rows, grads = _update_case(rng, dtype, idtype)
    expected = table.copy()
    ref.sgd_loop(expected, rows, grads, 0.3)
    K.sgd_update(table, rows, grads, 0.3)
    assert_same(table, expected)


@pytest.mark.parametrize("dtype,idtype", COMBOS, ids=COMBO_IDS)
def test_adagrad_update_matches_loop(dtype, idtype):
    rng = np.random.default_rng(10)
    table, rows, grads = _update_case(rng, dtype, idtype)
    state = rng.random(table.shape).astype(dtype)
    t0, s0 = table.copy(), state.copy()
    et, es = table.copy(), state.copy()
    for _ in range(2):  # two steps: the state matters
        ref.adagrad_loop(et, es, rows, grads, 0.05, eps=1e-8)
        K.adagrad_update(table, state, rows, grads, 0.05, eps=1e-8)
    assert_same(table, et)
    assert_same(state, es)
    dt, ds = ref.adagrad_dense(t0, s0, rows, grads, 0.05, 1e-8)
    dt, ds = ref.adagrad_dense(dt, ds, rows, grads, 0.05, 1e-8)
    np.testing.assert_allclose(table, dt, **TOL[dtype])
    np.testing.assert_allclose(state, ds, **TOL[dtype])


@pytest.mark.parametrize("dtype,idtype", COMBOS, ids=COMBO_IDS)
def test_rowwise_adagrad_update_matches_loop(dtype, idtype):
    rng = np.random.default_rng(11)
    table, rows, grads = _update_case(rng, dtype, idtype)
    state = rng.random(table.shape[0]).astype(dtype)
    et, es = table.copy(), state.copy()
    for _ in range(2):
        ref.rowwise_adagrad_loop(et, es, rows, grads, 0.05)
        K.rowwise_adagrad_update(table, state, rows, grads, 0.05)
    assert_same(table, et)
    assert_same(state, es)


@pytest.mark.parametrize("dtype", FLOATS)
def test_updates_equal_coalesce_then_update(dtype):
    rng = np.random.default_rng(12)
    table, rows, grads = _update_case(rng, dtype, np.int64, n_rows=20, n=200)
    u, s = K.coalesce(rows, grads)
    for name in ("sgd", "adagrad", "rowwise"):
        a, b = table.copy(), table.copy()
        if name == "sgd":
            K.sgd_update(a, rows, grads, 0.1)
            K.sgd_update(b, u, s, 0.1)
        else:
            shape = table.shape if name == "adagrad" else table.shape[:1]
            sa, sb = np.zeros(shape, dtype), np.zeros(shape, dtype)
            f = K.adagrad_update if name == "adagrad" else K.rowwise_adagrad_update
            f(a, sa, rows, grads, 0.1)
            f(b, sb, u, s, 0.1)
            assert_same(sa, sb)
        assert_same(a, b)
        untouched = np.setdiff1d(np.arange(20), u)
        assert_same(a[untouched], table[untouched])


def test_update_edge_cases():
    t = np.ones((1, 3), np.float32)
    K.sgd_update(t, np.zeros(4, np.int32), np.ones((4, 3), np.float32), 0.5)
    assert_same(t, np.full((1, 3), -1, np.float32))
    t = np.ones((5, 3))
    K.sgd_update(t, np.empty(0, np.int64), np.empty((0, 3)), 0.5)
    K.adagrad_update(t, np.zeros((5, 3)), np.empty(0, np.int64), np.empty((0, 3)), 0.5)
    K.rowwise_adagrad_update(t, np.zeros(5), np.empty(0, np.int64), np.empty((0, 3)), 0.5)
    assert_same(t, np.ones((5, 3)))
    # dim 0: nothing to update, no NaN in the row-wise state
    t0, s0 = np.ones((2, 0)), np.zeros(2)
    K.rowwise_adagrad_update(t0, s0, np.array([1, 1]), np.ones((2, 0)), 0.1)
    assert_same(s0, np.zeros(2))
    # numpy scalar learning rates
    t = np.ones((2, 2))
    K.sgd_update(t, np.array([1]), np.ones((1, 2)), np.float32(0.5))
    assert_same(t, np.array([[1, 1], [0.5, 0.5]]))


@pytest.mark.slow_without_jit
def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(13)
    table = make_table(rng, 3000, 24, np.float32)
    indices, offsets = make_bags(rng, 3000, 2000, 40, np.int64)
    grad_out = rng.standard_normal((2000, 24)).astype(np.float32)
    results = []
    n_threads = numba.get_num_threads()
    try:
        for threads in sorted({1, n_threads}):
            numba.set_num_threads(threads)
            fwd = K.embedding_bag(table, indices, offsets, "mean")
            rows, g = K.embedding_bag_grad(grad_out, indices, offsets, "mean")
            t, s = table.copy(), np.zeros_like(table)
            K.adagrad_update(t, s, indices, g[np.searchsorted(rows, indices)], 0.1)
            u, c = K.coalesce(indices, g[np.searchsorted(rows, indices)])
            results.append((fwd, rows, g, t, s, u, c))
    finally:
        numba.set_num_threads(n_threads)
    for a, b in zip(results[0], results[-1]):
        assert_same(a, b)


# ============================================================== per-row primitives


@njit
def _trainer_like(table, state, state_rw, rows, grads, scales, lr, eps):
    # what a fused training kernel does: call the primitives per example
    for i in range(rows.shape[0]):
        optim.sgd_row(table, rows[i], grads[i], scales[i], lr)
        optim.adagrad_row(table, state, rows[i], grads[i], scales[i], lr, eps)
        optim.rowwise_adagrad_row(table, state_rw, rows[i], grads[i], scales[i], lr, eps)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("gdtype", FLOATS)
def test_row_primitives_match_formulas(dtype, gdtype):
    rng = np.random.default_rng(14)
    T = np.dtype(dtype).type
    table = make_table(rng, 10, 5, dtype)
    state = rng.random((10, 5)).astype(dtype)
    state_rw = rng.random(10).astype(dtype)
    rows = np.array([3, 3, 0, 9], np.int64)
    grads = rng.standard_normal((4, 5)).astype(gdtype)
    scales = np.array([0.5, -2.0, 1.0, 3.0])
    lr, eps = 0.1, 1e-6
    et, es, ers = table.copy(), state.copy(), state_rw.copy()
    for r, grad, sc in zip(rows, grads, scales):
        g = T(sc) * grad.astype(dtype)
        et[r] = et[r] - T(lr) * g
        s = es[r] + g * g
        es[r] = s
        et[r] = et[r] - T(lr) * (g / (np.sqrt(s) + T(eps)))
        sq = T(0)
        for x in g * g:
            sq = T(sq + x)
        ers[r] = T(ers[r] + T(sq / T(5)))
        et[r] = et[r] - T(T(lr) / T(np.sqrt(ers[r]) + T(eps))) * g
    _trainer_like(table, state, state_rw, rows, grads, scales, lr, eps)
    assert_same(table, et)
    assert_same(state, es)
    assert_same(state_rw, ers)
    # the primitives are also callable from Python
    t2 = table.copy()
    optim.sgd_row(t2, 1, grads[0], 1.0, 0.5)
    np.testing.assert_array_equal(t2[1], table[1] - T(0.5) * grads[0].astype(dtype))


def test_row_primitives_do_not_allocate():
    from numba.core.runtime import rtsys

    nrt = pytest.importorskip("numba.core.runtime._nrt_python")

    table = np.ones((4, 8), np.float32)
    state = np.zeros((4, 8), np.float32)
    state_rw = np.zeros(4, np.float32)
    grads = np.ones((1000, 8), np.float32)
    scales = np.ones(1000)

    def allocations(n):
        rows = np.zeros(n, np.int64) + 2
        before = rtsys.get_allocation_stats().alloc
        _trainer_like(table, state, state_rw, rows, grads[:n], scales[:n], 0.01, 1e-8)
        return rtsys.get_allocation_stats().alloc - before

    was_enabled = nrt.memsys_stats_enabled()
    nrt.memsys_enable_stats()
    try:
        allocations(1)  # compile
        assert allocations(1000) == allocations(1)
    finally:
        if not was_enabled:
            nrt.memsys_disable_stats()


# ============================================================== hypothesis properties


@st.composite
def bag_cases(draw):
    dtype = draw(st.sampled_from(FLOATS))
    idtype = draw(st.sampled_from(INTS))
    n_rows = draw(st.integers(1, 12))
    dim = draw(st.integers(1, 9))
    sizes = draw(st.lists(st.integers(0, 7), min_size=0, max_size=10))
    offsets = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    indices = np.array(
        draw(st.lists(st.integers(0, n_rows - 1), min_size=int(offsets[-1]), max_size=int(offsets[-1]))),
        dtype=idtype,
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    table = make_table(rng, n_rows, dim, dtype)
    weights = rng.standard_normal(len(indices)).astype(dtype)
    grad_out = rng.standard_normal((len(sizes), dim)).astype(dtype)
    return table, indices, offsets, weights, grad_out


@settings(max_examples=40, deadline=None)
@given(bag_cases(), st.sampled_from(["mean", "sum", "weighted"]))
def test_property_embedding_bag_and_grad(case, mode):
    table, indices, offsets, weights, grad_out = case
    dtype = table.dtype.type
    w = weights if mode == "weighted" else None
    m = "sum" if mode == "weighted" else mode
    out = K.embedding_bag(table, indices, offsets, m, w)
    assert_same(out, ref.embedding_bag_loop(table, indices, offsets, m, w))
    np.testing.assert_allclose(out, ref.embedding_bag_csr(table, indices, offsets, m, w), **TOL[dtype])
    rows, g = K.embedding_bag_grad(grad_out, indices, offsets, m, w)
    er, eg = ref.bag_grad_loop(grad_out, indices, offsets, m, w)
    assert_same(rows, er)
    assert_same(g, eg)
    if len(indices):
        np.testing.assert_allclose(g, ref.bag_grad_csr(grad_out, indices, offsets, m, w)[1], **TOL[dtype])
    assert_same(K.gather(table, indices), table[indices])


@st.composite
def update_cases(draw):
    dtype = draw(st.sampled_from(FLOATS))
    idtype = draw(st.sampled_from(INTS))
    n_rows = draw(st.integers(1, 10))
    dim = draw(st.integers(1, 8))
    rows = np.array(draw(st.lists(st.integers(0, n_rows - 1), max_size=30)), dtype=idtype)
    if draw(st.booleans()):
        rows = np.unique(rows)  # the no-coalesce fast path
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    table = make_table(rng, n_rows, dim, dtype)
    grads = rng.standard_normal((len(rows), dim)).astype(dtype)
    lr = draw(st.sampled_from([1e-3, 0.1, 1.0, -0.5]))
    return table, rows, grads, lr


@settings(max_examples=40, deadline=None)
@given(update_cases())
def test_property_coalesce_and_updates(case):
    table, rows, grads, lr = case
    dtype = table.dtype.type
    u, s = K.coalesce(rows, grads)
    eu, es = ref.coalesce_loop(rows, grads)
    assert_same(u, eu)
    assert_same(s, es)
    if len(rows):
        np.testing.assert_allclose(s, ref.coalesce_dense(rows, grads, table.shape[0])[u], **TOL[dtype])

    t, et = table.copy(), table.copy()
    K.sgd_update(t, rows, grads, lr)
    ref.sgd_loop(et, rows, grads, lr)
    assert_same(t, et)

    t, et = table.copy(), table.copy()
    st_, est = np.full(table.shape, 0.5, dtype), np.full(table.shape, 0.5, dtype)
    K.adagrad_update(t, st_, rows, grads, lr)
    ref.adagrad_loop(et, est, rows, grads, lr)
    assert_same(t, et)
    assert_same(st_, est)

    t, et = table.copy(), table.copy()
    sr, esr = np.zeros(table.shape[0], dtype), np.zeros(table.shape[0], dtype)
    K.rowwise_adagrad_update(t, sr, rows, grads, lr)
    ref.rowwise_adagrad_loop(et, esr, rows, grads, lr)
    assert_same(t, et)
    assert_same(sr, esr)


# ============================================================== PyTorch agreement (optional)


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
def test_matches_torch_when_available():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(15)
    table = make_table(rng, 200, 8, np.float32)
    indices, offsets = make_bags(rng, 200, 50, 12, np.int64)
    grad_out = rng.standard_normal((50, 8)).astype(np.float32)
    weight = torch.tensor(table, requires_grad=True)
    ti, to = torch.from_numpy(indices), torch.from_numpy(offsets)
    for mode in ("mean", "sum"):
        out = F.embedding_bag(ti, weight, to, mode=mode, include_last_offset=True)
        np.testing.assert_allclose(K.embedding_bag(table, indices, offsets, mode), out.detach().numpy(),
                                   rtol=1e-5, atol=1e-6)
        (gw,) = torch.autograd.grad(out, weight, torch.from_numpy(grad_out))
        rows, g = K.embedding_bag_grad(grad_out, indices, offsets, mode)
        np.testing.assert_allclose(g, gw.numpy()[rows], rtol=1e-5, atol=1e-6)
    # Adagrad: one sparse step with unique rows is bit-identical to torch.optim.Adagrad
    rows = np.unique(indices)
    g = rng.standard_normal((len(rows), 8)).astype(np.float32)
    p = torch.nn.Parameter(torch.tensor(table))
    opt = torch.optim.Adagrad([p], lr=0.1, eps=1e-10)
    p.grad = torch.sparse_coo_tensor(torch.from_numpy(rows)[None], torch.from_numpy(g), p.shape,
                                     check_invariants=True)
    opt.step()
    t, s = table.copy(), np.zeros_like(table)
    K.adagrad_update(t, s, rows, g, 0.1)
    np.testing.assert_array_equal(t, p.detach().numpy())
    np.testing.assert_array_equal(s, opt.state[p]["sum"].numpy())


# ============================================================== errors


T32 = np.zeros((5, 3), np.float32)
IDX = np.array([0, 4, 2], np.int64)
OFF = np.array([0, 1, 3])
G32 = np.zeros((3, 3), np.float32)


def _tab():
    return np.zeros((5, 3), np.float32)


def _with_table(call):
    return call(_tab())


ERROR_CASES = [
    # (id, call, exception, message regex)
    ("gather id too large", lambda: K.gather(T32, np.array([0, 1, 5, 9])), IndexError, r"ids\[2\] = 5 .*5 rows"),
    ("gather negative id", lambda: K.gather(T32, np.array([0, -1], np.int32)), IndexError, r"ids\[1\] = -1"),
    ("gather float ids", lambda: K.gather(T32, np.array([0.0, 1.0])), TypeError, "integer"),
    ("gather bool ids", lambda: K.gather(T32, np.array([True])), TypeError, "integer"),
    ("gather 2-D ids", lambda: K.gather(T32, np.zeros((2, 2), np.int64)), ValueError, "1-D"),
    ("gather str ids", lambda: K.gather(T32, "01"), TypeError, "integer array"),
    ("1-D table", lambda: K.gather(np.zeros(5, np.float32), IDX), ValueError, "2-D"),
    ("int table", lambda: K.gather(np.zeros((5, 3), np.int64), IDX), TypeError, "float32 or float64"),
    ("float16 table", lambda: K.gather(np.zeros((5, 3), np.float16), IDX), TypeError, "float32"),
    ("list table", lambda: K.gather([[1.0]], IDX), TypeError, "ndarray"),
    ("non-contiguous table", lambda: K.gather(np.zeros((5, 6), np.float32)[:, ::2], IDX), ValueError,
     "C-contiguous"),
    ("fortran table", lambda: K.gather(np.asfortranarray(np.zeros((5, 3))), IDX), ValueError, "C-contiguous"),
    ("bag id too large", lambda: K.embedding_bag(T32, np.array([0, 7, 9]), OFF), IndexError, r"indices\[1\] = 7"),
    ("bag negative id", lambda: K.embedding_bag(T32, np.array([0, 1, -3]), OFF), IndexError, r"indices\[2\] = -3"),
    ("offsets[0] != 0", lambda: K.embedding_bag(T32, IDX, np.array([1, 3])), ValueError, r"offsets\[0\]"),
    ("offsets[-1] != len", lambda: K.embedding_bag(T32, IDX, np.array([0, 2])), ValueError, r"offsets\[-1\]"),
    ("offsets decreasing", lambda: K.embedding_bag(T32, IDX, np.array([0, 2, 1, 3])), ValueError,
     r"non-decreasing.*offsets\[2\] = 1"),
    ("offsets empty", lambda: K.embedding_bag(T32, IDX, np.array([], np.int64)), ValueError, "n_bags"),
    ("offsets 2-D", lambda: K.embedding_bag(T32, IDX, np.array([[0, 3]])), ValueError, "1-D"),
    ("offsets float", lambda: K.embedding_bag(T32, IDX, np.array([0.0, 3.0])), TypeError, "integer"),
    ("bad mode", lambda: K.embedding_bag(T32, IDX, OFF, mode="max"), ValueError, "mode"),
    ("weights with mean", lambda: K.embedding_bag(T32, IDX, OFF, "mean", np.ones(3, np.float32)), ValueError,
     "mode='sum'"),
    ("weights default mode", lambda: K.embedding_bag(T32, IDX, OFF, per_sample_weights=np.ones(3, np.float32)),
     ValueError, "mode='sum'"),
    ("weights wrong length", lambda: K.embedding_bag(T32, IDX, OFF, "sum", np.ones(4, np.float32)), ValueError,
     "one weight per index"),
    ("weights wrong dtype", lambda: K.embedding_bag(T32, IDX, OFF, "sum", np.ones(3)), TypeError, "float64"),
    ("weights 2-D", lambda: K.embedding_bag(T32, IDX, OFF, "sum", np.ones((3, 1), np.float32)), ValueError, "1-D"),
    ("grad negative id", lambda: K.embedding_bag_grad(G32[:2], np.array([0, -1, 2]), OFF), IndexError,
     r"indices\[1\] = -1"),
    ("grad_out rows != bags", lambda: K.embedding_bag_grad(G32, IDX, OFF), ValueError, "one row per bag"),
    ("grad_out 1-D", lambda: K.embedding_bag_grad(np.zeros(2, np.float32), IDX, OFF), ValueError, "2-D"),
    ("grad_out int", lambda: K.embedding_bag_grad(np.zeros((2, 3), np.int32), IDX, OFF), TypeError, "float"),
    ("grad weights dtype", lambda: K.embedding_bag_grad(G32[:2], IDX, OFF, "sum", np.ones(3)), TypeError, "dtype"),
    ("grad weights with mean", lambda: K.embedding_bag_grad(G32[:2], IDX, OFF, "mean", np.ones(3, np.float32)),
     ValueError, "mode='sum'"),
    ("coalesce length mismatch", lambda: K.coalesce(IDX, np.zeros((2, 3))), ValueError, "one row per id"),
    ("coalesce negative", lambda: K.coalesce(np.array([3, -2]), np.zeros((2, 3))), IndexError, r"rows\[1\] = -2"),
    ("coalesce float rows", lambda: K.coalesce(np.array([1.5]), np.zeros((1, 3))), TypeError, "integer"),
    ("coalesce 1-D grads", lambda: K.coalesce(IDX, np.zeros(3)), ValueError, "2-D"),
    ("sgd grad dtype mismatch", lambda: K.sgd_update(_tab(), IDX, np.zeros((3, 3)), 0.1), TypeError,
     "float64.*float32"),
    ("sgd grad shape", lambda: K.sgd_update(_tab(), IDX, np.zeros((3, 2), np.float32), 0.1), ValueError,
     r"shape \(3, 3\)"),
    ("sgd grad rows", lambda: K.sgd_update(_tab(), IDX, np.zeros((2, 3), np.float32), 0.1), ValueError, "shape"),
    ("sgd id too large", lambda: K.sgd_update(_tab(), np.array([5]), np.zeros((1, 3), np.float32), 0.1),
     IndexError, r"rows\[0\] = 5"),
    ("sgd nan lr", lambda: K.sgd_update(_tab(), IDX, G32, float("nan")), ValueError, "finite"),
    ("sgd inf lr", lambda: K.sgd_update(_tab(), IDX, G32, np.inf), ValueError, "finite"),
    ("sgd str lr", lambda: K.sgd_update(_tab(), IDX, G32, "0.1"), TypeError, "real number"),
    ("sgd array lr", lambda: K.sgd_update(_tab(), IDX, G32, np.array([0.1])), TypeError, "real number"),
    ("sgd bool lr", lambda: K.sgd_update(_tab(), IDX, G32, True), TypeError, "real number"),
    ("sgd read-only table", lambda: K.sgd_update(np.broadcast_to(np.float32(0), (5, 3)), IDX, G32, 0.1),
     ValueError, "C-contiguous|read-only"),
    ("sgd read-only table 2", lambda: K.sgd_update(np.frombuffer(bytes(60), np.float32).reshape(5, 3), IDX, G32,
                                                   0.1), ValueError, "read-only"),
    ("sgd grads alias table", lambda: _with_table(lambda t: K.sgd_update(t, IDX, t[:3], 0.1)), ValueError,
     "share memory"),
    ("adagrad state shape", lambda: K.adagrad_update(_tab(), np.zeros(5, np.float32), IDX, G32, 0.1), ValueError,
     "state must have shape"),
    ("adagrad state dtype", lambda: K.adagrad_update(_tab(), np.zeros((5, 3)), IDX, G32, 0.1), TypeError,
     "state has dtype"),
    ("adagrad state list", lambda: K.adagrad_update(_tab(), [[0.0] * 3] * 5, IDX, G32, 0.1), TypeError, "ndarray"),
    ("adagrad state non-contiguous", lambda: K.adagrad_update(_tab(), np.zeros((3, 5), np.float32).T, IDX, G32,
                                                              0.1), ValueError, "C-contiguous"),
    ("adagrad state is table", lambda: _with_table(lambda t: K.adagrad_update(t, t, IDX, G32, 0.1)), ValueError,
     "share memory"),
    ("adagrad nan lr", lambda: K.adagrad_update(_tab(), _tab(), IDX, G32, float("nan")), ValueError, "lr"),
    ("adagrad negative eps", lambda: K.adagrad_update(_tab(), _tab(), IDX, G32, 0.1, eps=-1.0), ValueError, "eps"),
    ("adagrad nan eps", lambda: K.adagrad_update(_tab(), _tab(), IDX, G32, 0.1, eps=float("nan")), ValueError,
     "eps"),
    ("adagrad id negative", lambda: K.adagrad_update(_tab(), _tab(), np.array([0, -5, 1]), G32, 0.1), IndexError,
     r"rows\[1\] = -5"),
    ("rowwise state shape", lambda: K.rowwise_adagrad_update(_tab(), _tab(), IDX, G32, 0.1), ValueError,
     r"state must have shape \(5,\)"),
    ("rowwise state dtype", lambda: K.rowwise_adagrad_update(_tab(), np.zeros(5), IDX, G32, 0.1), TypeError,
     "state has dtype"),
    ("rowwise inf lr", lambda: K.rowwise_adagrad_update(_tab(), np.zeros(5, np.float32), IDX, G32, -np.inf),
     ValueError, "finite"),
    ("rowwise grad dtype", lambda: K.rowwise_adagrad_update(_tab(), np.zeros(5, np.float32), IDX,
                                                            np.zeros((3, 3)), 0.1), TypeError, "dtype"),
    ("rowwise id too large", lambda: K.rowwise_adagrad_update(_tab(), np.zeros(5, np.float32),
                                                              np.array([0, 1, 2, 3, 4, 5], np.int32),
                                                              np.zeros((6, 3), np.float32), 0.1), IndexError,
     r"rows\[5\] = 5"),
]


@pytest.mark.parametrize("call,exc,match", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_failed_update_leaves_table_untouched():
    rng = np.random.default_rng(16)
    table = make_table(rng, 5, 3, np.float64)
    state = np.zeros_like(table)
    before = table.copy()
    rows = np.array([0, 1, 2, 3, 4, 5])  # the last one is out of range
    with pytest.raises(IndexError, match=r"rows\[5\] = 5"):
        K.adagrad_update(table, state, rows, np.ones((6, 3)), 0.1)
    assert_same(table, before)
    assert_same(state, np.zeros_like(table))


def test_first_bad_id_is_reported():
    ids = np.array([1, 2, 99, -4, 100], np.int64)
    with pytest.raises(IndexError, match=r"ids\[2\] = 99"):
        K.gather(T32, ids)
    with pytest.raises(IndexError, match=r"ids\[3\] = -4"):
        K.gather(np.zeros((1000, 2)), ids)


def test_huge_uint64_ids_are_rejected():
    with pytest.raises(IndexError, match=r"ids\[1\]"):
        K.gather(T32, np.array([0, 2**64 - 1], np.uint64))
