"""With NUMBA_DISABLE_JIT=1 (the coverage run of .ci/run) the kernels compute what they compile to.

Without the JIT the kernels run as Python on NumPy scalars, whose rules differ from compiled
code: uint64 products wrap as in C but warn, and an int64 mixed with a uint64 gives a float64
(no longer an index). A subprocess with the JIT off computes :func:`results`; this process,
with the JIT on, computes them again, and they must agree.
"""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

import fastembed
from fastembed.kernels import coalesce
from fastembed.model.rng import init_uniform
from fastembed.text import build_corpus

TESTS = Path(__file__).resolve().parent


def _lines(name, start, stop):
    return b"".join(gzip.decompress((FIXTURES / name).read_bytes()).splitlines(keepends=True)[start:stop])


def results():
    """Arrays from the integer-heavy kernels (hashing, splitmix64, radix sort) and training."""
    out = {}
    # FNV-1a of non-ASCII bytes (signed chars: UTF-8, and Latin-1 in the 20 Newsgroups slice),
    # word and character n-gram hashes, a big bucket
    corpora = {"sst2": _lines("sst2_train_slice.txt.gz", 0, None),
               "20ng": _lines("20newsgroups_train_latin1_slice.txt.gz", 40, 51)}
    for name, data in corpora.items():
        d, c = build_corpus(data, word_ngrams=3, minn=2, maxn=5, bucket=1_000_003, min_count=2)
        for field in ("indices", "offsets", "label_indices", "label_offsets", "ntokens"):
            out[f"{name}.{field}"] = getattr(c, field)
        out[f"{name}.word_counts"] = d.word_counts
    table = np.empty((40, 7), np.float32)
    init_uniform(table, 0.25, 2**63 - 25)  # seed * constant overflows
    out["init_uniform"] = table
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 2**62, size=300) // 7 * 7  # repeats, and a span that needs every radix pass
    ids[::3] = ids[0]
    rows, sums = coalesce(ids, rng.standard_normal((300, 3)).astype(np.float32))
    out["coalesce.rows"], out["coalesce.sums"] = rows, sums
    # training on multi-label lines (the slice ends with 50): softmax and hs draw a label per
    # step from a uint64 random number
    corpus = _lines("reuters21578_modapte_train_slice.txt.gz", -50, -30)
    for loss in ("softmax", "ova", "hs"):
        m = fastembed.train_supervised(corpus, loss=loss, epoch=2, dim=6, lr=0.5, word_ngrams=2,
                                       bucket=5000, threads=1, seed=9, verbose=0)
        out[f"{loss}.input"], out[f"{loss}.output"] = m.input_matrix, m.output_matrix
    return out


def main(path):
    import numba

    assert numba.config.DISABLE_JIT
    np.savez(path, **results())


@pytest.mark.jit_only
def test_kernels_without_the_jit_compute_the_same(tmp_path):
    path = tmp_path / "no_jit.npz"
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-W", "ignore::RuntimeWarning", "-c",
         f"import test_pure_python as t; t.main({str(path)!r})"],
        check=False, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    without_jit = np.load(path)
    with_jit = results()
    assert sorted(without_jit.files) == sorted(with_jit)
    for key, value in with_jit.items():
        if key.endswith((".input", ".output")):
            # float32 exp may differ in the last bit between NumPy and LLVM, and training carries
            # such differences on: equal to float32 rounding, relative to the largest entry
            scale = np.abs(value).max()
            np.testing.assert_allclose(without_jit[key], value, rtol=0, atol=1e-5 * scale, err_msg=key)
        else:
            np.testing.assert_array_equal(without_jit[key], value, err_msg=key)
