"""How much each input row tells about the label: the supervised factor of the tf-idf weights.

With ``pooling="tfidf"`` and ``label_weighting=β > 0``, row ``r``'s idf is multiplied by
``1 + β * KL(P(label | r) || P(label))``: the divergence of the label distribution of the
training lines that contain ``r`` from the label distribution of all lines. A row spread over
the labels as the corpus is (a stop word, a frequent bigram) keeps its idf; a row that points
at one label weighs more, in the hidden vector and in its L2 norm. It is the idea of NBSVM
(Wang & Manning 2012: naive-Bayes log-count ratios scaling the features of a linear model),
taken to any number of labels; the weight lives in the model's ``idf``, so prediction needs
nothing new.

Counts, for the lines of the corpus (a row counted once per line, every label of a
multi-label line counted): ``N[r, c]`` lines containing ``r`` with label ``c``, ``T[r] =
sum_c N[r, c]``, ``π[c]`` the share of label ``c`` among all (line, label) pairs. The
distribution given the row is smoothed toward the prior with :data:`PSEUDO_COUNT` lines:
``P(c | r) = (N[r, c] + s π[c]) / (T[r] + s)``, so a row seen once moves little. Then

    KL = (1 / (T + s)) * sum_c (N + s π)(ln(N + s π) - ln π) - ln(T + s)

and a label absent from the row's lines adds ``s π ln s`` to the sum whatever the row: only the
non-zero counts need work. The counts are made for a block of labels at a time
(:func:`label_blocks`), so memory stays within a quarter of the input table's size (or
:data:`_MIN_BLOCK_BYTES`), for any number of labels; int32 counts (:func:`count_dtype`) fit twice
the labels of int64 in a block: 20 Newsgroups (540k rows, 20 labels) takes one pass, 0.15-0.2 s
of CPU, instead of two.

Measured (test P@1, mean of 3 seeds, fastembed's other defaults, 2 threads), β = 2 against
β = 0: 20 Newsgroups +2.8 points, Reuters-21578 +1.8, TREC-50 +1.7, AG News +1.4, IMDB +0.6;
TREC-6 -0.1, SMS -0.1, SST-2 -0.1. The pseudo-count: 1 gave more on AG News and 20 Newsgroups
(+2.2, +3.8 with β = 4) but cost TREC-6 0.9 points (rows seen once or twice weighed as if
they were sure); 20 gave back most of the gains.
"""

import math

import numpy as np

from fastembed.jit import BYTES, njit
from fastembed.text.encoded import PER_LINE_CHUNK

__all__ = ["PSEUDO_COUNT", "apply_label_weighting", "corpus_block_counts", "count_dtype", "label_blocks",
           "label_line_counts", "label_row_counts", "row_divergence"]

PSEUDO_COUNT = 5.0
_MIN_BLOCK_BYTES = 64 << 20


def label_line_counts(label_indices, label_offsets, nlabels):
    """Lines holding each label (int64, (nlabels,)); a label twice in a line counts once.

    :data:`~fastembed.text.encoded.PER_LINE_CHUNK` lines at a time, so that the temporaries
    (the labels as int64, the labels per line) do not grow with the corpus: whole, they held
    16 bytes a line (136 MB for the 8.5M lines of a 10 GB corpus).
    """
    counts = np.zeros(nlabels, np.int64)
    width = max(nlabels, 1)
    n = label_offsets.size - 1
    for a in range(0, n, PER_LINE_CHUNK):
        b = min(a + PER_LINE_CHUNK, n)
        labels = np.asarray(label_indices[int(label_offsets[a]):int(label_offsets[b])], np.int64)
        per_line = np.diff(label_offsets[a:b + 1])
        if per_line.max() > 1:  # multi-label lines: one (line, label) pair each
            lines = np.repeat(np.arange(per_line.size, dtype=np.int64), per_line)
            labels = np.unique(lines * width + labels) % width
        counts += np.bincount(labels, minlength=nlabels)
    return counts


def label_row_counts(indices, offsets, label_indices, label_offsets, first_label, counts):
    """Add to ``counts[j, r]`` the bags that contain row ``r`` and hold label ``first_label + j``.

    ``counts`` is (block, n_rows) int32, or int64 when a label has 2**31 lines or more
    (:func:`count_dtype`); a row or label repeated within a bag counts once. The
    rows and labels are those of an encoded corpus (proven in range when it was made). The bags
    are visited label by label, so the counts being added to are one label's row of ``counts``
    at a time (measured on 20 Newsgroups, 6.5M rows in bags, 540k table rows, 20 labels: 1.4 s
    in the order of the bags, into an (n_rows, block) table; ~0.1 s this way).
    """
    block = counts.shape[0]
    _label_row_counts(indices, offsets, label_indices, label_offsets, first_label, counts,
                      np.zeros(block + 1, dtype=np.int64), np.full(block, -1, dtype=np.int64),
                      np.empty(label_indices.size, dtype=np.int64),
                      np.full(counts.shape[1], -1, dtype=np.int64))


@njit(**BYTES)
def _label_row_counts(indices, offsets, label_indices, label_offsets, first_label, counts, starts,
                      last_label, bags, last_pair):
    """:func:`label_row_counts` with its scratch from the caller: ``starts`` zeros (block + 1,),
    ``last_label`` and ``last_pair`` -1 (block,) and (n_rows,), ``bags`` (label_indices.size,)
    (a bag is counted once per label of its block). Allocating them here (NumPy's allocation and
    its error messages) made the kernel's bitcode 31.7 kB instead of 20.3 kB, which a process
    parses when it loads the kernel from Numba's cache."""
    block = counts.shape[0]
    n_bags = offsets.size - 1
    for b in range(n_bags):  # a counting sort of the (bag, label) pairs by label
        for i in range(label_offsets[b], label_offsets[b + 1]):
            j = label_indices[i] - first_label
            if 0 <= j < block and last_label[j] != b:
                last_label[j] = b
                starts[j + 1] += 1
    for j in range(block):
        starts[j + 1] += starts[j]
    fill = starts[:block]  # starts[j] becomes the end of label j's bags (starts[j + 1] before)
    last_label[:] = -1
    for b in range(n_bags):
        for i in range(label_offsets[b], label_offsets[b + 1]):
            j = label_indices[i] - first_label
            if 0 <= j < block and last_label[j] != b:
                last_label[j] = b
                bags[fill[j]] = b
                fill[j] += 1
    # a row counts once per (bag, label); label j's bags are bags[start:fill[j]]
    start = 0
    for j in range(block):
        stop = fill[j]
        for k in range(start, stop):
            b = bags[k]
            for i in range(offsets[b], offsets[b + 1]):
                r = indices[i]
                if last_pair[r] != k:
                    last_pair[r] = k
                    counts[j, r] += 1
        start = stop


@njit(**BYTES)
def _add_label_terms(counts, prior, pseudo, sums, totals):
    """For a block of labels: ``sums[r] += sum_j (N + s π)(ln(N + s π) - ln π) - s π ln s`` over
    the non-zero ``N = counts[j, r]`` (``π = prior[j]``), ``totals[r] += sum_j N``. A kernel:
    NumPy on the non-zero counts (np.nonzero, np.bincount) took 0.17-0.28 s of CPU on IMDB and
    20 Newsgroups against this kernel's 0.11-0.2 s, more than the ~5 ms its load from Numba's
    cache costs a process."""
    log_s = math.log(pseudo)
    for j in range(counts.shape[0]):
        p = prior[j]
        for r in range(counts.shape[1]):
            n = counts[j, r]
            if n > 0:
                x = n + pseudo * p
                sums[r] += x * (math.log(x) - math.log(p)) - pseudo * p * log_s
                totals[r] += n


def count_dtype(line_counts):
    """The dtype of the label x row counts: int32 (half the memory, so twice the labels in a
    block) unless a label's lines, which bound every count of it, could overflow it."""
    return np.int32 if line_counts.size == 0 or int(line_counts.max()) < 2**31 else np.int64


def label_blocks(n_rows, nlabels, dim, itemsize, min_block_bytes=_MIN_BLOCK_BYTES):
    """``(first, stop)`` label ranges whose counts table (labels x n_rows, ``itemsize`` bytes
    each) stays within a quarter of the input table (n_rows x dim float32) or ``min_block_bytes``."""
    budget = max(n_rows * dim, min_block_bytes)
    size = int(min(max(budget // (itemsize * max(n_rows, 1)), 1), max(nlabels, 1)))
    return [(c, min(c + size, nlabels)) for c in range(0, nlabels, size)]


def row_divergence(block_counts, line_counts, n_rows, dim, min_block_bytes=_MIN_BLOCK_BYTES):
    """``KL(P(label | r) || P(label))`` of every row (float64), and whether a line held it.

    ``block_counts(first, stop, dtype)`` returns the (stop - first, n_rows) counts of those
    labels (:func:`label_row_counts` over the corpus); ``line_counts`` the lines of each label;
    ``dim`` and ``min_block_bytes`` size the blocks (:func:`label_blocks`).
    """
    prior = line_counts.astype(np.float64)
    prior /= max(prior.sum(), 1.0)
    sums = np.zeros(n_rows, np.float64)
    totals = np.zeros(n_rows, np.float64)
    dtype = count_dtype(line_counts)
    for first, stop in label_blocks(n_rows, line_counts.size, dim, np.dtype(dtype).itemsize, min_block_bytes):
        _add_label_terms(block_counts(first, stop, dtype), prior[first:stop], PSEUDO_COUNT, sums, totals)
    s = PSEUDO_COUNT
    divergence = (sums + s * math.log(s)) / (totals + s) - np.log(totals + s)
    return np.maximum(divergence, 0.0), totals > 0  # rounding can leave -1e-16 where it is 0


def corpus_block_counts(pieces, n_rows):
    """``block_counts`` of :func:`row_divergence` for a corpus given as ``pieces()``, an iterable
    of ``(indices, offsets, label_indices, label_offsets)`` (one piece, or a mapped corpus's)."""
    def block_counts(first, stop, dtype):
        counts = np.zeros((stop - first, n_rows), dtype)
        for indices, offsets, label_indices, label_offsets in pieces():
            label_row_counts(indices, offsets, label_indices, label_offsets, first, counts)
        return counts
    return block_counts


def apply_label_weighting(idf, strength, divergence):
    """``idf * (1 + strength * divergence)`` as float32 (the unseen-bucket row's 0 stays 0)."""
    return (idf * (1.0 + strength * divergence)).astype(np.float32)
