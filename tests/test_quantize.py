"""Product quantization and row pruning (fastembed.quantize) against plain NumPy references.

The reference k-means below is the algorithm of fastembed.quantize's docstring written the
obvious way: a full (points x centroids) distance table summed column by column, ``argmin``
for the nearest centroid, ``np.add.at`` for the sums, Python loops for empty clusters. The
kernel must give the very same codebooks and codes (same float32 arithmetic, same ties).
The data are synthetic: these are properties of the algorithm, not of a corpus.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastembed.errors import ArgumentError
from fastembed.quantize import (
    QuantizedMatrix,
    importance,
    kmeans,
    nearest_centroids,
    prune_rows,
    quantize_matrix,
    row_norms,
)

# -- the reference -------------------------------------------------------------------------------


def ref_nearest(points, centroids):
    dist = np.zeros((points.shape[0], centroids.shape[0]), dtype=np.float32)
    for t in range(points.shape[1]):
        dist += np.square(points[:, t, None] - centroids[None, :, t])
    return np.argmin(dist, axis=1)


def ref_kmeans(points, ksub, niter, rng):
    n, d = points.shape
    centroids = points[rng.permutation(n)[:ksub]].copy()
    for _ in range(niter):
        codes = ref_nearest(points, centroids)
        sums = np.zeros((ksub, d))
        np.add.at(sums, codes, points.astype(np.float64))
        counts = np.zeros(ksub, dtype=np.int64)
        np.add.at(counts, codes, 1)
        for j in range(ksub):
            if counts[j]:
                centroids[j] = (sums[j] / counts[j]).astype(np.float32)
        for j in range(ksub):
            if counts[j] == 0:
                m = max(range(ksub), key=lambda c: (counts[c], -c))
                step = np.array([(1.0 if t % 2 else -1.0) * 2.0**-20 * max(abs(float(centroids[m, t])), 1.0)
                                 for t in range(d)], dtype=np.float32)
                base = centroids[m].copy()
                centroids[j], centroids[m] = base + step, base - step
                counts[j] = counts[m] // 2
                counts[m] -= counts[j]
    return centroids


def ref_codebook(x, ksub, niter, max_points, rng, p=None):
    n, d = x.shape
    if n <= ksub:
        book = np.zeros((ksub, d), dtype=np.float32)
        book[:n] = x
        return book
    if p is not None:  # weighted: max_points rows drawn with replacement
        sample = x[rng.choice(n, size=min(n, max_points), p=p)]
    else:
        sample = x[rng.permutation(n)[:max_points]] if n > max_points else x
    return ref_kmeans(sample, ksub, niter, rng)


def ref_quantize(x, dsub, bits, qnorm, seed, niter, max_points, weights=None):
    """Returns (dense reconstruction, list of codebooks, codes (rows, nsubq), norm codes or None)."""
    ksub = 1 << bits
    rows, dim = x.shape
    norm_codes = None
    p = None if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    if qnorm:
        norms = np.sqrt(np.sum(np.square(x).astype(np.float64), axis=1)).astype(np.float32)
        nbook = ref_codebook(norms[:, None], ksub, niter, max_points, np.random.default_rng((seed, 1)), p)
        norm_codes = ref_nearest(norms[:, None], nbook)
        x = x / np.where(norms == 0, np.float32(1), norms)[:, None]
    books, codes, out = [], [], np.empty((rows, dim), dtype=np.float32)
    for m, col in enumerate(range(0, dim, dsub)):
        block = np.ascontiguousarray(x[:, col:col + dsub])
        book = ref_codebook(block, ksub, niter, max_points, np.random.default_rng((seed, 0, m)), p)
        code = ref_nearest(block, book)
        books.append(book)
        codes.append(code)
        out[:, col:col + dsub] = book[code]
    if qnorm:
        out *= nbook[norm_codes, 0][:, None]
    return out, books, np.stack(codes, axis=1), norm_codes


def gaussian_rows(rows, dim, seed=0):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.1, 3.0, size=(rows, 1))  # rows of very different norms
    return (rng.standard_normal((rows, dim)) * scale).astype(np.float32)


# -- PQ ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows, dim, dsub, bits, qnorm, max_points, weighted",
    [
        (300, 6, 2, 4, False, None, False),  # k-means on all rows
        (200, 7, 3, 3, True, None, False),  # last block narrower (lastdsub 1), norms quantized
        (500, 5, 1, 5, False, 64, False),  # k-means on a sample of 64
        (40, 4, 2, 6, True, None, False),  # fewer rows than centroids: every row its own centroid
        (300, 6, 2, 4, False, None, True),  # rows drawn by weight (importance)
        (200, 7, 3, 3, True, 100, True),  # weighted, norms too, a sample smaller than the rows
    ],
)
def test_quantize_equals_reference_kmeans(rows, dim, dsub, bits, qnorm, max_points, weighted):
    x = gaussian_rows(rows, dim, seed=rows)
    x[3] = 0  # a zero row (its norm is left alone)
    x[7] = x[8]  # duplicate rows: ties, and empty clusters to split
    niter = 6
    weights = np.square(np.linalg.norm(x.astype(np.float64), axis=1)) if weighted else None
    q = quantize_matrix(x, dsub=dsub, bits=bits, qnorm=qnorm, seed=5, niter=niter, max_points=max_points,
                        weights=weights)
    ref_dense, books, codes, norm_codes = ref_quantize(
        x, dsub, bits, qnorm, 5, niter, max_points or 256 * (1 << bits), weights)
    q.check()
    assert q.shape == (rows, dim) and q.nsubq == len(books) and q.ksub == 1 << bits
    for m, book in enumerate(books):
        np.testing.assert_array_equal(q.codebook(m), book)
    np.testing.assert_array_equal(q.codes, codes)
    if qnorm:
        np.testing.assert_array_equal(q.norm_codes, norm_codes)
    np.testing.assert_array_equal(q.dense(), ref_dense)


def test_kmeans_equals_reference_with_empty_clusters():
    rng = np.random.default_rng(3)
    # 3 distinct points repeated: most of the 8 starting centroids coincide, clusters empty out
    points = np.repeat(rng.standard_normal((3, 2)).astype(np.float32) * 4, 20, axis=0)
    points = np.concatenate([points, rng.standard_normal((10, 2)).astype(np.float32)])
    got = kmeans(points, 8, 10, np.random.default_rng(11))
    want = ref_kmeans(points, 8, 10, np.random.default_rng(11))
    np.testing.assert_array_equal(got, want)
    assert np.unique(got, axis=0).shape[0] == 8  # the splits separated every centroid


def test_fewer_rows_than_centroids_is_exact():
    x = gaussian_rows(100, 10)
    q = quantize_matrix(x, dsub=3, qnorm=False)
    np.testing.assert_array_equal(q.dense(), x)


def test_codes_in_range_and_layout():
    x = gaussian_rows(1000, 9)
    q = quantize_matrix(x, dsub=4, bits=5, qnorm=True, niter=4)
    assert q.codes.dtype == np.uint8 and q.codes.shape == (1000, 3)
    assert q.codes.max() < 32 and q.norm_codes.max() < 32
    assert (q.dsub, q.lastdsub, q.ksub) == (4, 1, 32)
    assert q.centroids.shape == (9 * 32,)
    # fastText's flat layout: block m < nsubq-1 at (m*ksub + i)*dsub, the last at m*ksub*dsub + i*lastdsub
    np.testing.assert_array_equal(q.codebook(1)[7], q.centroids[(32 + 7) * 4:(32 + 8) * 4])
    np.testing.assert_array_equal(q.codebook(2)[7], q.centroids[2 * 32 * 4 + 7:2 * 32 * 4 + 8])
    # each code is the nearest centroid of its (normalised) sub-vector
    unit = x / row_norms(x)[:, None]
    np.testing.assert_array_equal(q.codes[:, 1], ref_nearest(unit[:, 4:8], q.codebook(1)))


def test_error_decreases_with_more_bits_and_smaller_dsub():
    # 400 rows of 8 (more than the 256 centroids of 8 bits) and 4 passes: 7 s without the JIT,
    # where 3000 rows of 16 and 8 passes took about 200 s; the margins stay wide (the error
    # falls 100x from 2 to 8 bits, 180x from dsub 8 to 1)
    x = gaussian_rows(400, 8, seed=1)

    def error(**kw):
        return float(np.mean(np.square(quantize_matrix(x, niter=4, **kw).dense() - x)))

    by_bits = [error(dsub=2, bits=b) for b in (2, 4, 6, 8)]
    by_dsub = [error(dsub=d, bits=8) for d in (8, 4, 2, 1)]
    assert by_bits == sorted(by_bits, reverse=True) and by_bits[-1] < by_bits[0] / 10
    assert by_dsub == sorted(by_dsub, reverse=True) and by_dsub[-1] < by_dsub[0] / 10


def test_deterministic_by_seed():
    x = gaussian_rows(2000, 6)
    a = quantize_matrix(x, qnorm=True, seed=1, niter=5)
    b = quantize_matrix(x, qnorm=True, seed=1, niter=5)
    c = quantize_matrix(x, qnorm=True, seed=2, niter=5)
    for name in ("centroids", "codes", "norm_codes", "norm_centroids"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.centroids, c.centroids)


def test_qnorm_rebuilds_norm_times_unit_rows():
    x = gaussian_rows(600, 4, seed=2)
    x[0] = 0
    q = quantize_matrix(x, dsub=2, qnorm=True, niter=5)
    dense = q.dense()
    norms = q.norm_centroids[q.norm_codes]
    unit = QuantizedMatrix(q.centroids, q.codes, q.dim, q.dsub).dense()
    np.testing.assert_array_equal(dense, unit * norms[:, None])  # float32 products, as fastText
    np.testing.assert_array_equal(q.norm_codes, ref_nearest(row_norms(x)[:, None], q.norm_centroids[:, None]))
    assert np.all(dense[0] == 0)


def test_row_norms_match_float64():
    x = gaussian_rows(70000, 5)  # more than one chunk
    np.testing.assert_allclose(row_norms(x), np.linalg.norm(x.astype(np.float64), axis=1), rtol=1e-6)


def test_check_rejects_bad_codes():
    x = gaussian_rows(300, 4)
    q = quantize_matrix(x, bits=3, niter=2)
    q.codes[5, 1] = 9  # >= ksub = 8
    with pytest.raises(ArgumentError, match="code"):
        q.check()


@pytest.mark.parametrize("kw", [dict(dsub=0), dict(dsub=5), dict(bits=9), dict(bits=0), dict(niter=-1),
                                dict(max_points=10), dict(dsub=True)])
def test_quantize_rejects_bad_arguments(kw):
    with pytest.raises(ArgumentError):
        quantize_matrix(gaussian_rows(10, 4), **kw)


def test_quantize_rejects_non_finite_and_bad_shapes():
    x = gaussian_rows(10, 4)
    x[2, 1] = np.nan
    with pytest.raises(ArgumentError, match="NaN"):
        quantize_matrix(x)
    with pytest.raises(ArgumentError):
        quantize_matrix(np.zeros(5, dtype=np.float32))
    with pytest.raises(ArgumentError):
        nearest_centroids(np.zeros((3, 2), np.float32), np.zeros((4, 3), np.float32))


# -- pruning -------------------------------------------------------------------------------------


def ref_prune(matrix, nwords, cutoff, keep):
    norms = np.sqrt(np.sum(np.square(matrix).astype(np.float64), axis=1)).astype(np.float32)
    order = sorted(range(matrix.shape[0]), key=lambda r: (r not in keep, -norms[r], r))[:cutoff]
    return sorted(r for r in order if r < nwords), [r for r in order if r >= nwords]


@pytest.mark.parametrize("cutoff", [1, 7, 30, 60, 200])
def test_prune_rows_equals_reference(cutoff):
    x = gaussian_rows(60, 5, seed=cutoff)
    x[10] = x[40]  # equal norms across words and n-grams: lower row first
    x[41] = x[42]
    x[5] = 0  # the </s> row: kept first whatever its norm
    got = prune_rows(x, 25, cutoff, keep=[5])
    words, ngrams = ref_prune(x, 25, cutoff, {5})
    assert got.word_rows.tolist() == words
    assert got.ngram_rows.tolist() == ngrams
    assert got.rows.tolist() == words + ngrams


@pytest.mark.parametrize("nwords, cutoff, keep", [(3, 0, ()), (3, -1, ()), (100, 5, ()), (3, 5, [60])])
def test_prune_rows_rejects_bad_arguments(nwords, cutoff, keep):
    with pytest.raises(ArgumentError):
        prune_rows(gaussian_rows(60, 5), nwords, cutoff, keep=keep)


def test_importance_weights_spend_the_centroids_on_the_rows_that_weigh():
    """A few rows of large norm among many small ones (a trained embedding table: used rows
    moved far, rare ones stayed near their start): weighting by the squared norm cuts the error
    of the large rows, which dominate any pooled sum of rows; the small rows pay for it."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4000, 8)) * 0.05).astype(np.float32)
    big = rng.choice(4000, 200, replace=False)
    x[big] *= rng.uniform(10, 40, size=(200, 1)).astype(np.float32)
    np.testing.assert_allclose(importance(x), np.square(np.linalg.norm(x.astype(np.float64), axis=1)), rtol=1e-6)

    def errors(q):
        e = np.square(q.dense() - x).sum(axis=1)
        return e[big].sum(), np.delete(e, big).sum()

    big_uniform, small_uniform = errors(quantize_matrix(x, dsub=2, bits=4, niter=10))
    big_weighted, small_weighted = errors(quantize_matrix(x, dsub=2, bits=4, niter=10, weights=importance(x)))
    assert big_weighted < 0.6 * big_uniform and small_weighted > small_uniform  # measured: 0.53x


@pytest.mark.parametrize("weights", [np.ones(3), -np.ones(10), np.full(10, np.nan)])
def test_quantize_rejects_bad_weights(weights):
    with pytest.raises(ArgumentError, match="weights"):
        quantize_matrix(gaussian_rows(10, 4), weights=weights)


def test_zero_weights_are_the_uniform_sample():
    x = gaussian_rows(300, 4)
    np.testing.assert_array_equal(quantize_matrix(x, bits=4, niter=3, weights=np.zeros(300)).codes,
                                  quantize_matrix(x, bits=4, niter=3).codes)
