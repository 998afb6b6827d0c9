#!/usr/bin/env python
"""Benchmark of fastembed.kernels (a benchmark, not a test).

One run prints a markdown table of median wall times and speed-ups on the same
inputs, with 2 threads (Numba and, when importable, torch):

* forward  ``embedding_bag(mode="mean")`` vs NumPy
  (``np.add.reduceat(table[indices], offsets[:-1]) / counts``), vs SciPy
  (CSR one-hot matrix with 1/count data, ``csr @ table``) and vs
  ``torch.nn.functional.embedding_bag``;
* backward ``embedding_bag_grad`` + ``adagrad_update`` vs a vectorised NumPy
  reference (stable argsort + ``np.add.reduceat`` + fancy-indexed Adagrad) and
  vs torch (``nn.EmbeddingBag(sparse=True)`` backward + ``torch.optim.Adagrad``
  step; the forward is run outside the timer);

then the JIT cost: the first call in a fresh process (subprocess) with a warm
cache and with a cold cache (``NUMBA_CACHE_DIR`` pointed at a new temp dir).

Default data: a 1M-row float32 table, dims 16/64/128, 64k bags of 25..75
(mean 50) Zipf(1.05)-distributed int64 ids.  ``--quick`` shrinks it to 200k
rows, 16k bags, dims 16/64 and 3 repeats.

    python scripts/bench_kernels.py [--repeats N] [--dims 16,64,128] [--quick]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import scipy.sparse as sp

THREADS = 2


def zipf_ids(rng, n_rows, n, s=1.05):
    """``n`` ids in ``[0, n_rows)``, Zipf(s)-distributed over a random permutation of the rows."""
    w = 1.0 / np.arange(1, n_rows + 1, dtype=np.float64) ** s
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    ranks = np.minimum(np.searchsorted(cdf, rng.random(n)), n_rows - 1)
    perm = rng.permutation(n_rows)
    return perm[ranks].astype(np.int64)


def make_data(rng, n_rows, n_bags, lo=25, hi=75):
    sizes = rng.integers(lo, hi + 1, n_bags)
    offsets = np.zeros(n_bags + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    indices = zipf_ids(rng, n_rows, int(offsets[-1]))
    return indices, offsets


def timeit(cases, repeats):
    """Median wall time of each case over ``repeats`` runs, after one warm-up run.

    ``cases`` maps a name to ``fn`` or ``(fn, setup)`` (``setup`` runs untimed
    before each ``fn``).  The cases are interleaved run by run, so that load
    from other processes on the machine hits all of them alike.
    """
    cases = {k: (v if isinstance(v, tuple) else (v, None)) for k, v in cases.items()}
    times = {k: [] for k in cases}
    for i in range(repeats + 1):
        for name, (fn, setup) in cases.items():
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if i > 0:
                times[name].append(dt)
    return {k: statistics.median(v) for k, v in times.items()}


# ---------------------------------------------------------------- baselines


def numpy_bag_mean(table, indices, offsets):
    counts = np.diff(offsets)
    return np.add.reduceat(table[indices], offsets[:-1], axis=0) / counts[:, None].astype(table.dtype)


def numpy_grad_adagrad(table, state, indices, offsets, grad_out, lr, eps):
    """Vectorised NumPy: per-index grads, stable sort, reduceat, fancy-indexed Adagrad."""
    counts = np.diff(offsets)
    bag = np.repeat(np.arange(len(counts)), counts)
    scale = (1.0 / counts.astype(grad_out.dtype))[bag]
    order = np.argsort(indices, kind="stable")
    sidx = indices[order]
    first = np.flatnonzero(np.r_[True, sidx[1:] != sidx[:-1]])
    rows = sidx[first]
    contrib = grad_out[bag[order]] * scale[order, None]
    g = np.add.reduceat(contrib, first, axis=0)
    s = state[rows] + g * g
    state[rows] = s
    table[rows] -= lr * (g / (np.sqrt(s) + eps))
    return rows, g


# ---------------------------------------------------------------- JIT cost

_FIRST_CALL = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import numba
t1 = time.perf_counter()
import fastembed.kernels as K
t2 = time.perf_counter()
rng = np.random.default_rng(0)
table = rng.standard_normal((1000, 16)).astype(np.float32)
state = np.zeros_like(table)
idx = rng.integers(0, 1000, 500).astype(np.int64)
off = np.arange(0, 501, 5, dtype=np.int64)
t3 = time.perf_counter()
out = K.embedding_bag(table, idx, off, "mean")
t4 = time.perf_counter()
rows, g = K.embedding_bag_grad(out, idx, off, "mean")
K.adagrad_update(table, state, rows, g, 0.1)
t5 = time.perf_counter()
json.dump({"import_numba": t1 - t0, "import_kernels": t2 - t1,
           "embedding_bag": t4 - t3, "grad_adagrad": t5 - t4}, sys.stdout)
"""


def first_call_cost(cache_dir=None):
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    res = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


# ---------------------------------------------------------------- cases


def _ms(t):
    return f"{t * 1e3:.1f} ms" if t is not None else "n/a"


def _ratio(ours, theirs):
    return f"{theirs / ours:.2f}x" if (ours and theirs) else "n/a"


def bench_forward(K, torch, table, indices, offsets, csr, repeats):
    """Median times of embedding_bag(mean) and its baselines, after checking they agree."""
    out = K.embedding_bag(table, indices, offsets, "mean")
    ref = numpy_bag_mean(table, indices, offsets)
    assert np.allclose(out, ref, rtol=1e-4, atol=1e-5), "forward mismatch vs NumPy"
    del ref
    close = {"fe": lambda: K.embedding_bag(table, indices, offsets, "mean")}
    if torch is not None:
        import torch.nn.functional as F

        wt, it, ot = torch.from_numpy(table), torch.from_numpy(indices), torch.from_numpy(offsets)
        tout = F.embedding_bag(it, wt, ot, mode="mean", include_last_offset=True)
        assert np.allclose(tout.numpy(), out, rtol=1e-4, atol=1e-5), "forward mismatch vs torch"
        close["torch"] = lambda: F.embedding_bag(it, wt, ot, mode="mean", include_last_offset=True)
    # interleave the close contenders; the slow NumPy/SciPy baselines (which
    # allocate gigabytes and flush the caches) run in a round of their own
    t = timeit(close, repeats)
    t.update(timeit({"np": lambda: numpy_bag_mean(table, indices, offsets),
                     "sp": lambda: csr @ table}, repeats))
    return t


def bench_backward(K, torch, table0, indices, offsets, grad_out, repeats, lr=0.1, eps=1e-10):
    """Median times of embedding_bag_grad + adagrad_update and the baselines.

    The tables change from run to run, which does not matter for timing.
    """
    # correctness check against the NumPy baseline, on copies
    t1, s1 = table0.copy(), np.zeros_like(table0)
    rows, g = K.embedding_bag_grad(grad_out, indices, offsets, "mean")
    K.adagrad_update(t1, s1, rows, g, lr, eps)
    t2, s2 = table0.copy(), np.zeros_like(table0)
    rows2, g2 = numpy_grad_adagrad(t2, s2, indices, offsets, grad_out, lr, eps)
    # float32 sums of up to ~1e5 terms in different orders: compare relative to the scale
    assert np.array_equal(rows, rows2), "grad rows mismatch vs NumPy"
    assert np.abs(g - g2).max() <= 1e-4 * np.abs(g2).max(), "grad mismatch vs NumPy"
    # g / sqrt(g*g) is +-1 for a tiny g whose sign depends on rounding: skip those rows
    big = np.abs(g2).min(axis=1) > 1e-3 * np.abs(g2).max()
    if big.any():
        assert np.abs(t1[rows[big]] - t2[rows[big]]).max() <= 1e-3 * lr, "Adagrad mismatch"
    del t1, s1, t2, s2, rows2, g2, rows, g

    table, state = table0.copy(), np.zeros_like(table0)

    def fe_step():
        r, gr = K.embedding_bag_grad(grad_out, indices, offsets, "mean")
        K.adagrad_update(table, state, r, gr, lr, eps)

    close = {"fe": fe_step}
    if torch is not None:
        emb = torch.nn.EmbeddingBag(table0.shape[0], table0.shape[1], mode="mean", sparse=True)
        with torch.no_grad():
            emb.weight.copy_(torch.from_numpy(table0))
        opt = torch.optim.Adagrad(emb.parameters(), lr=lr, eps=eps)
        it, ot, gt = torch.from_numpy(indices), torch.from_numpy(offsets[:-1]), torch.from_numpy(grad_out)
        holder = {}

        def torch_fwd():  # untimed
            opt.zero_grad(set_to_none=True)
            holder["out"] = emb(it, ot)

        def torch_step():
            holder["out"].backward(gt)
            opt.step()

        close["torch"] = (torch_step, torch_fwd)
    t = timeit(close, repeats)
    close.clear()
    tb, sb = table0.copy(), np.zeros_like(table0)
    t.update(timeit({"np": lambda: numpy_grad_adagrad(tb, sb, indices, offsets, grad_out, lr, eps)},
                    repeats))
    return t


# ---------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per case (median); default 7, 3 with --quick")
    ap.add_argument("--dims", default=None, help="comma-separated dims (default 16,64,128; 16,64 with --quick)")
    ap.add_argument("--quick", action="store_true", help="200k rows, 16k bags")
    ap.add_argument("--rows", type=int, default=None, help="table rows (default 1M, 200k with --quick)")
    ap.add_argument("--bags", type=int, default=None, help="bags (default 65536, 16384 with --quick)")
    ap.add_argument("--no-jit", action="store_true", help="skip the first-call (JIT) measurements")
    ap.add_argument("--no-torch", action="store_true", help="leave torch out even if importable")
    args = ap.parse_args(argv)

    repeats = args.repeats or (3 if args.quick else 7)
    dims = [int(d) for d in (args.dims or ("16,64" if args.quick else "16,64,128")).split(",")]
    n_rows = args.rows or (200_000 if args.quick else 1_000_000)
    n_bags = args.bags or (16_384 if args.quick else 65_536)

    import numba

    numba.set_num_threads(THREADS)
    import fastembed.kernels as K

    try:
        if args.no_torch:
            raise ImportError("--no-torch")
        import torch

        torch.set_num_threads(THREADS)
        warnings.filterwarnings("ignore", message="Sparse invariant checks")
        torch_note = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError as exc:  # depends on the machine
        torch = None
        torch_note = f"torch not importable ({exc}): torch columns skipped"

    rng = np.random.default_rng(12345)
    indices, offsets = make_data(rng, n_rows, n_bags)
    counts = np.diff(offsets)
    n_idx = len(indices)
    n_unique = len(np.unique(indices))
    csr = sp.csr_matrix(
        (np.repeat(1.0 / counts, counts).astype(np.float32), indices, offsets),
        shape=(n_bags, n_rows),
    )
    print("# fastembed.kernels benchmark\n")
    print(f"numba {numba.__version__}, {numba.get_num_threads()} threads; numpy {np.__version__}; {torch_note}")
    print(f"table {n_rows:,} x dim float32; {n_bags:,} bags, {n_idx:,} int64 ids "
          f"(Zipf 1.05, {n_unique:,} unique rows); median of {repeats} runs\n")

    header = ("| dim | fastembed fwd | NumPy fwd | SciPy CSR fwd | torch fwd | x NumPy | x SciPy | x torch "
              "| fastembed grad+Adagrad | NumPy grad+Adagrad | torch bwd+Adagrad | x NumPy | x torch |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))

    for dim in dims:
        table0 = rng.standard_normal((n_rows, dim)).astype(np.float32)
        grad_out = rng.standard_normal((n_bags, dim)).astype(np.float32)
        fwd = bench_forward(K, torch, table0, indices, offsets, csr, repeats)
        bwd = bench_backward(K, torch, table0, indices, offsets, grad_out, repeats)
        del table0, grad_out
        print(f"| {dim} | {_ms(fwd['fe'])} | {_ms(fwd['np'])} | {_ms(fwd['sp'])} | {_ms(fwd.get('torch'))} "
              f"| {_ratio(fwd['fe'], fwd['np'])} | {_ratio(fwd['fe'], fwd['sp'])} "
              f"| {_ratio(fwd['fe'], fwd.get('torch'))} | {_ms(bwd['fe'])} | {_ms(bwd['np'])} "
              f"| {_ms(bwd.get('torch'))} | {_ratio(bwd['fe'], bwd['np'])} "
              f"| {_ratio(bwd['fe'], bwd.get('torch'))} |", flush=True)

    print("\nTargets: x NumPy fwd >= 3, x torch fwd >= 1, x torch grad+Adagrad >= 1.5 "
          "(x = baseline time / fastembed time).")

    if not args.no_jit:
        print("\n## First call in a fresh process (float32 / int64, tiny inputs)\n")
        print("| cache | import numpy+numba | import fastembed.kernels | first embedding_bag | first grad+adagrad_update |")
        print("|---|---|---|---|---|")
        first_call_cost()  # make sure the default cache is warm
        warm = first_call_cost()
        with tempfile.TemporaryDirectory(prefix="numba-cold-") as d:
            cold = first_call_cost(d)
        for name, r in (("warm (__pycache__)", warm), ("cold (empty NUMBA_CACHE_DIR)", cold)):
            print(f"| {name} | {r['import_numba'] * 1e3:.0f} ms | {r['import_kernels'] * 1e3:.0f} ms "
                  f"| {r['embedding_bag'] * 1e3:.0f} ms | {r['grad_adagrad'] * 1e3:.0f} ms |")


if __name__ == "__main__":
    main()
