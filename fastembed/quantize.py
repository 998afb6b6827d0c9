"""Product quantization of embedding tables, and pruning of their rows (fastText's ``quantize``).

Pure functions on arrays: nothing here knows the Model.

Product quantization
--------------------
A ``(rows, dim)`` float32 matrix is cut into ``nsubq = ceil(dim / dsub)`` blocks of columns,
``dsub`` columns each except the last, which holds the ``lastdsub = dim - (nsubq - 1) * dsub``
left over. Each block has its own codebook of ``ksub = 2**bits`` centroids, learnt by k-means
on the block's sub-vectors, and each row keeps, per block, the index of its nearest centroid:
``nsubq`` bytes instead of ``4 * dim``. With ``qnorm`` the rows are first divided by their L2
norms and the norms get a codebook of their own (one byte more per row); a row is rebuilt as
``norm * centroids``, in float32, as fastText's ``QuantMatrix::addRowToVector`` does.

The codebooks are kept in fastText's layout (``productquantizer.cc``): one flat float32 array
of ``dim * ksub`` values, where centroid ``i`` of block ``m`` starts at ``(m * ksub + i) * dsub``
and, for the last block, at ``m * ksub * dsub + i * lastdsub``. A ``.ftz`` file is read and
written with no reshuffle (:mod:`fastembed.fasttext_format`).

k-means, per block, after fastText's ``ProductQuantizer::train``: at most ``256 * ksub``
sub-vectors (a random sample when there are more; with ``weights``, as :meth:`Model.quantize`
passes them (:func:`importance`), ``min(rows, 256 * ksub)`` rows drawn with replacement in
proportion to their weight, drawn anew for every block); the initial centroids are ``ksub`` of them
drawn without replacement; ``niter`` rounds of (assign every point to its nearest centroid,
ties to the lowest index; move every centroid to the mean of its points); a centroid left
without points takes half of the largest cluster (the lowest-numbered of equals): both start
from that cluster's centroid, pushed apart by a tiny step of alternating sign per dimension.
Then every row of the matrix is assigned. A matrix of at most ``ksub`` rows needs no k-means:
every row is its own centroid (fastText refuses fewer than 256 rows). Block ``m`` draws from
``numpy.random.default_rng((seed, 0, m))`` and the norms from ``default_rng((seed, 1))``, so
the result depends on the seed only. fastText splits an empty cluster off a *randomly* chosen
one and pushes by an absolute 1e-7, less than half a float32 ulp for coordinates of magnitude 2
and up (the two copies then stay equal and one of them stays empty); here the step is 2**-20
times the coordinate's magnitude (at least 2**-20), eight float32 ulps.

Pruning
-------
:func:`prune_rows` is fastText's ``-cutoff`` (``FastText::selectEmbeddings`` and
``Dictionary::prune``): keep the ``cutoff`` rows of largest L2 norm, words and hashed n-gram
buckets competing alike, with ``</s>`` always first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastembed.errors import ArgumentError
from fastembed.jit import SERIAL, njit

__all__ = [
    "FASTTEXT_KSUB",
    "Pruning",
    "QuantizedMatrix",
    "importance",
    "kmeans",
    "nearest_centroids",
    "prune_rows",
    "pruning_order",
    "quantize_matrix",
    "row_norms",
]

FASTTEXT_KSUB = 256  # fastText's ProductQuantizer: nbits_ = 8
MAX_POINTS_PER_CENTROID = 256  # fastText's max_points_per_cluster_
NITER = 25  # fastText's niter_
_SPLIT_STEP = 2.0**-20
_NORM_CHUNK_ROWS = 65536  # rows per block when computing norms (bounds the temporary copy)


@dataclass
class QuantizedMatrix:
    """A product-quantized ``(rows, dim)`` matrix (fastText's ``QuantMatrix``).

    Attributes
    ----------
    centroids : ndarray of float32, shape (dim * ksub,)
        The codebooks of every block, in fastText's flat layout (see the module docstring).
    codes : ndarray of uint8, shape (rows, nsubq)
        Per row and block, the index of the centroid (``< ksub``).
    dim : int
        Columns of the matrix.
    dsub : int
        Columns per block (the last may have fewer: :attr:`lastdsub`).
    norm_codes : ndarray of uint8, shape (rows,), or None
        With ``qnorm``: per row, the index of its norm in :attr:`norm_centroids`.
    norm_centroids : ndarray of float32, shape (ksub,), or None
        With ``qnorm``: the codebook of the row norms.
    """

    centroids: np.ndarray
    codes: np.ndarray
    dim: int
    dsub: int
    norm_codes: np.ndarray | None = None
    norm_centroids: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return int(self.codes.shape[0])

    @property
    def nsubq(self) -> int:
        return -(-self.dim // self.dsub)

    @property
    def lastdsub(self) -> int:
        """Columns of the last block (``dsub`` when ``dsub`` divides ``dim``)."""
        return self.dim - (self.nsubq - 1) * self.dsub

    @property
    def ksub(self) -> int:
        """Centroids per block."""
        return int(self.centroids.size) // self.dim

    @property
    def qnorm(self) -> bool:
        return self.norm_codes is not None

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.dim

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (codes, codebooks, norm codes and codebook)."""
        total = self.centroids.nbytes + self.codes.nbytes
        if self.qnorm:
            total += self.norm_codes.nbytes + self.norm_centroids.nbytes
        return total

    def check(self, name="quantized matrix"):
        """Raise :class:`ArgumentError` unless the arrays fit together (shapes, dtypes, codes
        in range), so that :meth:`dense` cannot index out of bounds."""
        def fail(why):
            raise ArgumentError(f"{name}: {why}")

        for field, value in (("dim", self.dim), ("dsub", self.dsub)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                fail(f"{field} must be a positive integer, got {value!r}")
        if self.dsub > self.dim:
            fail(f"dsub={self.dsub} is larger than dim={self.dim}")
        c = self.centroids
        if not (isinstance(c, np.ndarray) and c.dtype == np.float32 and c.ndim == 1
                and c.size % self.dim == 0 and 1 <= c.size // self.dim <= FASTTEXT_KSUB):
            fail(f"centroids must be float32 of size dim * ksub with 1 <= ksub <= {FASTTEXT_KSUB}")
        codes = self.codes
        if not (isinstance(codes, np.ndarray) and codes.dtype == np.uint8 and codes.ndim == 2
                and codes.shape[1] == self.nsubq):
            fail(f"codes must be uint8 of shape (rows, {self.nsubq})")
        if codes.size and int(codes.max()) >= self.ksub:
            fail(f"a code is >= ksub={self.ksub}")
        if (self.norm_codes is None) != (self.norm_centroids is None):
            fail("norm_codes and norm_centroids go together")
        if self.qnorm:
            nc, nb = self.norm_codes, self.norm_centroids
            if not (isinstance(nc, np.ndarray) and nc.dtype == np.uint8 and nc.shape == (self.rows,)
                    and isinstance(nb, np.ndarray) and nb.dtype == np.float32 and nb.ndim == 1
                    and 1 <= nb.size <= FASTTEXT_KSUB):
                fail("norm_codes must be uint8 of shape (rows,), norm_centroids float32 (ksub,)")
            if nc.size and int(nc.max()) >= nb.size:
                fail("a norm code is out of range")

    def block(self, m: int) -> tuple[int, int]:
        """First column and width of block ``m``."""
        return m * self.dsub, (self.lastdsub if m == self.nsubq - 1 else self.dsub)

    def codebook(self, m: int) -> np.ndarray:
        """The ``(ksub, width)`` centroids of block ``m`` (a view into :attr:`centroids`)."""
        _, width = self.block(m)
        start = m * self.ksub * self.dsub
        return self.centroids[start:start + self.ksub * width].reshape(self.ksub, width)

    def dense(self) -> np.ndarray:
        """The ``(rows, dim)`` float32 matrix the codes stand for, exactly as fastText rebuilds
        a row (``norm * centroid``, each product rounded to float32)."""
        out = np.empty((self.rows, self.dim), dtype=np.float32)
        for m in range(self.nsubq):
            col, width = self.block(m)
            out[:, col:col + width] = self.codebook(m)[self.codes[:, m]]
        if self.qnorm:
            out *= self.norm_centroids[self.norm_codes][:, None]
        return out


@njit(**SERIAL)
def _nearest(x, col, centroids_t, codes):
    """``codes[i]`` = the index of the centroid nearest to ``x[i, col:col + d]``: the squared
    L2 distance summed in float32 in column order, ties to the lowest index. Returns the total
    squared distance.

    ``centroids_t`` is the ``(d, k)`` transpose of the centroids, so that the distances of one
    point to all ``k`` centroids are computed column by column into a buffer, a loop the
    compiler vectorises (4x faster than centroid by centroid here: 0.6 against 2.4 ns per
    point and centroid, d=2, k=256). The caller guarantees ``col + d <= x.shape[1]``,
    ``codes.size == x.shape[0]`` and ``1 <= k <= 256``.
    """
    d, k = centroids_t.shape
    dist = np.empty(k, dtype=np.float32)
    total = 0.0
    for i in range(x.shape[0]):
        v = x[i, col]
        for j in range(k):
            diff = v - centroids_t[0, j]
            dist[j] = diff * diff
        for t in range(1, d):
            v = x[i, col + t]
            for j in range(k):
                diff = v - centroids_t[t, j]
                dist[j] += diff * diff
        best = dist[0]
        code = 0
        for j in range(1, k):
            if dist[j] < best:
                best = dist[j]
                code = j
        codes[i] = code
        total += best
    return total


def _assign(x, col, centroids, codes):
    """Fill ``codes`` (uint8) with the nearest of ``centroids`` ((k, d)) to ``x[:, col:col+d]``."""
    _nearest(x, col, np.ascontiguousarray(centroids.T), codes)


def nearest_centroids(x, centroids, col=0):
    """Indices (uint8) of the centroids nearest to the rows of ``x[:, col:col + d]``."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    k, d = centroids.shape
    if not (x.ndim == 2 and 1 <= k <= FASTTEXT_KSUB and 0 <= col and col + d <= x.shape[1]):
        raise ArgumentError(
            f"nearest_centroids: {k} centroids of width {d} at column {col} do not fit rows "
            f"of shape {x.shape}")
    codes = np.empty(x.shape[0], dtype=np.uint8)
    _assign(x, col, centroids, codes)
    return codes


def _split_empty(centroids, counts):
    """Give every empty cluster half of the largest one (see the module docstring)."""
    d = centroids.shape[1]
    sign = np.where(np.arange(d) % 2 == 1, 1.0, -1.0)
    for j in np.flatnonzero(counts == 0):
        m = int(np.argmax(counts))
        step = (sign * _SPLIT_STEP * np.maximum(np.abs(centroids[m]), 1.0)).astype(np.float32)
        base = centroids[m].copy()
        centroids[j] = base + step
        centroids[m] = base - step
        counts[j] = counts[m] // 2
        counts[m] -= counts[j]


def kmeans(points, ksub, niter, rng):
    """Lloyd's k-means of ``points`` ((n, d) float32, ``n >= ksub``) into ``ksub`` centroids.

    Returns the ``(ksub, d)`` float32 centroids. Means are summed in float64 and rounded to
    float32; see the module docstring for the start and for empty clusters.
    """
    points = np.ascontiguousarray(points, dtype=np.float32)
    n, d = points.shape
    centroids = points[rng.permutation(n)[:ksub]].copy()
    codes = np.empty(n, dtype=np.uint8)
    for _ in range(niter):
        _assign(points, 0, centroids, codes)
        counts = np.bincount(codes, minlength=ksub)
        filled = counts > 0
        for t in range(d):
            sums = np.bincount(codes, weights=points[:, t], minlength=ksub)
            centroids[filled, t] = (sums[filled] / counts[filled]).astype(np.float32)
        _split_empty(centroids, counts)
    return centroids


def _train_codebook(x, col, width, ksub, niter, max_points, rng, p=None):
    """Centroids ``(ksub, width)`` for the sub-vectors ``x[:, col:col + width]``; with ``p``
    (row probabilities), k-means runs on ``min(rows, max_points)`` rows drawn with replacement
    by ``p``."""
    n = x.shape[0]
    if n <= ksub:  # every row its own centroid: exact; the spare centroids are never used
        centroids = np.zeros((ksub, width), dtype=np.float32)
        centroids[:n] = x[:, col:col + width]
        return centroids
    if p is not None:  # as many draws as rows (up to max_points): the cost of the uniform k-means
        sample = x[rng.choice(n, size=min(n, max_points), p=p), col:col + width]
    elif n > max_points:
        sample = x[rng.permutation(n)[:max_points], col:col + width]
    else:
        sample = x[:, col:col + width]
    return kmeans(sample, ksub, niter, rng)


def _row_probabilities(weights, rows):
    """``weights`` as probabilities of drawing each row (None: fastText's uniform sample)."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (rows,) or not np.isfinite(w).all() or (w < 0).any():
        raise ArgumentError(f"quantize: weights must be {rows} finite non-negative numbers, one a row")
    total = w.sum()
    return None if total == 0 else w / total


def importance(matrix) -> np.ndarray:
    """The weights :meth:`Model.quantize` learns codebooks with: each row's squared L2 norm.

    A pooled vector is a weighted sum of rows, so a row's quantization error reaches it in
    absolute terms, and the rows of large norm are the ones training moved far from their
    small start: the rows the model uses (the premise of pruning by norm too). A uniform
    k-means spends most centroids on the many small rows of rare words and n-grams near their
    start. Measured on the same trained models at the defaults (scripts/bench_quantize.py
    --baseline, README): P@1 lost on 20 Newsgroups 0.88 points uniform, 0.41 weighted; TREC-6
    0.60 and 0.20; on the other six the two differ by 0.14 points at most, either way.
    """
    return np.square(row_norms(matrix).astype(np.float64))


def row_norms(matrix) -> np.ndarray:
    """L2 norms of the rows, float32, as fastText's ``DenseMatrix::l2NormRow``: float32 squares
    summed in float64, then the square root rounded to float32."""
    matrix = np.asarray(matrix)
    norms = np.empty(matrix.shape[0], dtype=np.float32)
    for start in range(0, matrix.shape[0], _NORM_CHUNK_ROWS):
        block = matrix[start:start + _NORM_CHUNK_ROWS]
        norms[start:start + block.shape[0]] = np.sqrt(
            np.square(block, dtype=np.float32).sum(axis=1, dtype=np.float64))
    return norms


def _check_matrix(matrix, name):
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[1] < 1 or matrix.dtype.kind != "f":
        raise ArgumentError(f"{name}: a 2-D float matrix with at least one column is needed, "
                            f"got shape {matrix.shape} of {matrix.dtype}")
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if not np.isfinite(matrix).all():
        raise ArgumentError(f"{name}: the matrix holds NaN or infinite values")
    return matrix


def quantize_matrix(matrix, *, dsub=2, bits=8, qnorm=False, seed=0, niter=NITER,
                    max_points=None, weights=None) -> QuantizedMatrix:
    """Product-quantize the rows of ``matrix`` (see the module docstring).

    Parameters
    ----------
    matrix : (rows, dim) float array, finite.
    dsub : int
        Columns per block, 1..dim (fastText's ``-dsub``, default 2).
    bits : int
        Bits per code, 1..8: ``2**bits`` centroids per block (fastText's files need 8).
    qnorm : bool
        Quantize the row norms separately (fastText's ``-qnorm``).
    seed : int
        The only source of randomness: equal seeds give equal results.
    niter : int
        k-means rounds (fastText: 25).
    max_points : int or None
        Sub-vectors each codebook is learnt on (default ``256 * 2**bits``, fastText's).
    weights : (rows,) array or None
        How much each row's quantization error counts: each codebook (and the norms') is then
        learnt on ``min(rows, max_points)`` rows drawn with replacement in proportion to ``weights``,
        so that k-means spends its centroids where the weight is (:func:`importance`).
        None (or all zero): fastText's uniform sample without replacement.
    """
    matrix = _check_matrix(matrix, "quantize")
    rows, dim = matrix.shape
    for name, value, low, high in (("dsub", dsub, 1, dim), ("bits", bits, 1, 8),
                                   ("niter", niter, 0, 10**6)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not low <= value <= high:
            raise ArgumentError(f"quantize: {name} must be an integer in [{low}, {high}], "
                                f"got {value!r}")
    ksub = 1 << int(bits)
    if max_points is None:
        max_points = MAX_POINTS_PER_CENTROID * ksub
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) \
            or max_points < ksub:
        raise ArgumentError(f"quantize: max_points must be an integer >= {ksub}, got {max_points!r}")
    dsub = int(dsub)
    nsubq = -(-dim // dsub)
    p = _row_probabilities(weights, rows)

    norm_codes = norm_centroids = None
    if qnorm:
        norms = row_norms(matrix)
        norm_centroids = _train_codebook(norms[:, None], 0, 1, ksub, niter, max_points,
                                         np.random.default_rng((seed, 1)), p)[:, 0].copy()
        norm_codes = nearest_centroids(norms[:, None], norm_centroids[:, None])
        safe = np.where(norms == 0, np.float32(1), norms)  # fastText leaves zero rows as they are
        matrix = matrix / safe[:, None]

    centroids = np.empty(dim * ksub, dtype=np.float32)
    codes = np.empty((rows, nsubq), dtype=np.uint8)
    q = QuantizedMatrix(centroids, codes, dim, dsub, norm_codes, norm_centroids)
    column = np.empty(rows, dtype=np.uint8)
    for m in range(nsubq):
        col, width = q.block(m)
        book = _train_codebook(matrix, col, width, ksub, niter, max_points,
                               np.random.default_rng((seed, 0, m)), p)
        q.codebook(m)[:] = book
        _assign(matrix, col, book, column)
        codes[:, m] = column
    return q


@dataclass
class Pruning:
    """The rows :func:`prune_rows` keeps, in the order of the pruned matrix.

    ``word_rows`` (ascending) are the kept rows below ``nwords``; ``ngram_rows`` the kept rows
    at or above it, by decreasing norm. The pruned matrix is ``matrix[rows]``; fastText's
    ``pruneidx`` maps bucket ``ngram_rows[j] - nwords`` to ``j``.
    """

    word_rows: np.ndarray
    ngram_rows: np.ndarray

    @property
    def rows(self) -> np.ndarray:
        return np.concatenate([self.word_rows, self.ngram_rows])


def pruning_order(matrix, keep=()) -> np.ndarray:
    """The rows of ``matrix`` in the order :func:`prune_rows` takes them (int64): those of
    ``keep`` first (ascending), then the others by decreasing L2 norm, equal norms lowest first."""
    n = matrix.shape[0]
    keep = np.unique(np.asarray(keep, dtype=np.int64))
    if keep.size and (keep[0] < 0 or keep[-1] >= n):
        raise ArgumentError(f"prune_rows: a row to keep is outside [0, {n})")
    order = np.argsort(-row_norms(matrix), kind="stable").astype(np.int64)
    if keep.size:
        order = np.concatenate([keep, order[~np.isin(order, keep)]])
    return order


def prune_rows(matrix, nwords, cutoff, keep=(), *, order=None) -> Pruning:
    """fastText's ``-cutoff``: keep the ``cutoff`` rows of ``matrix`` of largest L2 norm.

    The rows in ``keep`` (fastText: the row of ``</s>``) come first, whatever their norm;
    rows of equal norm are taken lowest first (fastText's ``std::sort`` leaves that order
    unspecified). Kept word rows (``< nwords``) stay in their order; kept n-gram rows are
    ordered by decreasing norm, as ``Dictionary::prune`` lays them out. ``order``, when given,
    is ``pruning_order(matrix, keep)`` already computed (the "auto" cutoff needs it first).
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise ArgumentError(f"prune_rows: a 2-D matrix is needed, got shape {matrix.shape}")
    n = matrix.shape[0]
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, np.integer)) or cutoff < 1:
        raise ArgumentError(f"prune_rows: cutoff must be a positive integer, got {cutoff!r}")
    if not 0 <= nwords <= n:
        raise ArgumentError(f"prune_rows: nwords={nwords} is outside [0, {n}]")
    chosen = (pruning_order(matrix, keep) if order is None else order)[:cutoff]
    is_word = chosen < nwords
    return Pruning(np.sort(chosen[is_word]), chosen[~is_word])
