"""The n-gram row map: which input-table row each hashed n-gram bucket reads.

The input table is logically ``(nwords + bucket, dim)``, fastText's layout; fastembed holds a
row only for the buckets a training corpus uses (and keeps, after ``min_count_ngram``): row
``nwords + j`` stands for bucket ``bucket_ids[j]`` (numbered by first appearance in the
training bags), and row ``nwords + len(bucket_ids)``, always zero, for every other bucket. This
is fastText's ``pruneidx_`` (``Dictionary::prune``), applied where the text is hashed.

The map is an open-addressing table of ``uint64`` keys ``bucket << 32 | j`` (linear probing,
load at most 1/2), sized by the number of used buckets, never by ``bucket`` (up to ``2**31 - 1``
in a model file). It is rebuilt from ``bucket_ids`` in O(used) when a dictionary is made, so the
model file holds only ``bucket_ids``. Numbering the buckets of a training corpus
(:func:`assign_rows`) goes through a direct map instead when ``bucket`` is at most
:data:`DIRECT_MAX_BUCKET` (64 MB at most; same numbering, several times faster).

An **empty** key table means "no map yet": rows stay in the hashed ``nwords + bucket`` space.
Only :func:`build_corpus` encodes that way, just before :func:`assign_rows` numbers the buckets.
"""

import numpy as np

from fastembed.jit import BYTES, njit, prefetch_row
from fastembed.text.hashing import EMPTY, U32, _slot

MIN_BITS = 4
_LOW32 = np.uint64(0xFFFFFFFF)

# statuses of build_row_table
TABLE_OK = 0
TABLE_OUT_OF_RANGE = 1
TABLE_DUPLICATE = 2


def table_bits(n):
    """Bits of a table holding ``n`` keys at load at most 1/2 (plain Python: the tables are
    allocated by the callers of the kernels)."""
    bits = MIN_BITS
    while (1 << bits) < 2 * int(n) + 2:
        bits += 1
    return bits


@njit(**BYTES)
def find_bucket(keys, bits, b):
    """Compact index of bucket ``b`` (``0 <= b < 2**31``), or ``-1 - slot`` of the free slot."""
    mask = (np.int64(1) << bits) - 1
    ub = np.uint64(b)
    s = _slot(ub, bits)
    while True:
        key = keys[s]
        if key == EMPTY:
            return -1 - s
        if (key >> U32) == ub:
            return np.int64(key & _LOW32)
        s = (s + 1) & mask


@njit(**BYTES)
def bucket_row(keys, bits, nwords, unseen_row, b):
    """Input row of bucket ``b``: its own row, else ``unseen_row``; ``nwords + b`` without a map."""
    if keys.size == 0:
        return nwords + b
    j = find_bucket(keys, bits, b)
    return nwords + j if j >= 0 else unseen_row


def build_row_table(bucket_ids, bucket):
    """The key table of ``bucket_ids`` (int32[n]): ``(keys uint64[2**bits], bits, status)``.

    ``status`` is :data:`TABLE_OK`, or :data:`TABLE_OUT_OF_RANGE` (an id outside
    ``[0, bucket)``) or :data:`TABLE_DUPLICATE` (an id twice): ``bucket_ids`` may come from an
    untrusted file, and a duplicate would leave a row unreachable.
    """
    bits = table_bits(bucket_ids.size)
    keys = np.full(1 << bits, EMPTY, np.uint64)
    return keys, bits, int(_fill_row_table(bucket_ids, bucket, keys, bits))


@njit(**BYTES)
def _fill_row_table(bucket_ids, bucket, keys, bits):
    """:func:`build_row_table` into ``keys`` (all EMPTY, ``2**bits`` slots); returns the status.
    The caller allocates: allocating here (NumPy's allocation and its error messages) made the
    kernel's bitcode 17.8 kB instead of 9.7 kB, which a process parses when it loads the kernel
    from Numba's cache."""
    for j in range(bucket_ids.size):
        b = np.int64(bucket_ids[j])
        if b < 0 or b >= bucket:
            return TABLE_OUT_OF_RANGE
        s = find_bucket(keys, bits, b)
        if s >= 0:
            return TABLE_DUPLICATE
        keys[-1 - s] = (np.uint64(b) << U32) | np.uint64(j)
    return TABLE_OK


@njit(**BYTES)
def _grown(keys, bits):
    """The same keys in a table of twice the slots."""
    bigger = np.full(np.int64(1) << (bits + 1), EMPTY, np.uint64)
    for key in keys:
        if key != EMPTY:
            s = find_bucket(bigger, bits + 1, np.int64(key >> U32))
            bigger[-1 - s] = key
    return bigger, bits + 1


# ``bucket`` up to this: the buckets are numbered through a direct map, int64[bucket, 2] (each
# bucket's number and count in one cache line; 32 MB at the default 2M, 64 MB at most), instead
# of the key table (16 bytes per used bucket at load 1/2, plus 8 per count elsewhere). Numbering is a random
# access per bag row; the map's row is prefetched some rows ahead, which a key table's probe
# cannot be. On a 0.3 GB IMDB-like corpus (105M rows, 2.2M buckets used): 9.7-10.8 s through
# the key table, 5.8 s through a map of numbers and a count array apart, 1.3 s this way.
DIRECT_MAX_BUCKET = 1 << 22
_AHEAD = 16  # rows of ``indices`` ahead whose map row is prefetched
# ... and when the corpus has at least bucket / 4 bag rows (``expected_rows``): filling the map
# costs its whole size. 120k rows (TREC-6's size) into bucket 2M: 14.9 ms through the map, 9.4 ms
# through the key table; 1M rows: 52 ms against 93 ms (uniformly drawn buckets, best of 5).
_DIRECT_MIN_ROWS_PER_BUCKET = 4
# Rows a key table starts with room for, at most (2**19 slots, 4 MB): see RowNumbering.
_KEY_START_ROWS = 1 << 17


def assign_rows(indices, nwords, bucket=None):
    """Number the buckets a training corpus uses, by first appearance; rewrite ``indices`` in place.

    ``indices`` holds rows of the hashed ``nwords + bucket`` space; each row ``nwords + b``
    becomes ``nwords + j``, ``j`` the number of the bucket ``b``. Memory grows with the buckets
    used, not with ``bucket`` (a direct map when ``bucket`` is given and at most
    :data:`DIRECT_MAX_BUCKET`).

    Returns
    -------
    (bucket_ids int32[n_used], counts int64[n_used])
        The bucket of each compact row, and its number of occurrences in ``indices``.
    """
    numbering = RowNumbering(nwords, bucket, expected_rows=indices.size)
    numbering.feed(indices)
    return numbering.result()


@njit(**BYTES)
def assign_rows_from(indices, i, nwords, keys, bits, bucket_ids, counts, n_used):
    """:func:`assign_rows` on one more piece of the corpus from its row ``i``, the numbering so far
    given: ``(keys, bits, bucket_ids, counts, n_used)`` (``bucket_ids``/``counts`` have room beyond
    ``n_used``), updated in place.

    Never allocates: it stops at a new bucket that finds the key table at load 1/2 or
    ``bucket_ids`` full, and returns ``(i, n_used)``, ``i`` that bucket's row (``indices.size``:
    done), for :class:`RowNumbering` to grow them. Growing them here (NumPy's allocation and its
    error messages, for two dtypes) made the kernel's bitcode 83.8 kB instead of 12.7 kB, with
    104 globals instead of 13, which a process parses and walks when it loads the kernel from
    Numba's cache (CPU of that load in a TREC-6 training: 12-13 ms before).
    """
    n = indices.size
    while i < n:
        r = np.int64(indices[i])
        if r >= nwords:
            b = r - nwords
            j = find_bucket(keys, bits, b)
            if j < 0:
                if 2 * (n_used + 1) + 2 > keys.size or n_used == bucket_ids.size:
                    return i, n_used
                keys[-1 - j] = (np.uint64(b) << U32) | np.uint64(n_used)
                bucket_ids[n_used] = b
                counts[n_used] = 0
                j = n_used
                n_used += 1
            counts[j] += 1
            indices[i] = nwords + j
        i += 1
    return i, n_used


@njit(**BYTES)
def assign_rows_direct(indices, nwords, slots, bucket_ids, n_used):
    """:func:`assign_rows_from` through a direct map: ``slots[b]`` is bucket ``b``'s number (-1:
    none yet) and count.

    Returns ``(bucket_ids, n_used)``, ``n_used`` -1 if a row lies beyond ``slots`` (``indices``
    then partly rewritten).
    """
    nslots = slots.shape[0]
    n = indices.size
    for i in range(n):
        if i + _AHEAD < n:
            ahead = np.int64(indices[i + _AHEAD]) - nwords
            if 0 <= ahead < nslots:
                prefetch_row(slots, ahead)
        r = np.int64(indices[i])
        if r < nwords:
            continue
        b = r - nwords
        if b >= nslots:
            return bucket_ids, -1
        j = slots[b, 0]
        if j < 0:
            if n_used == bucket_ids.size:
                bucket_ids = _grow_copy(bucket_ids, 2 * n_used)
            slots[b, 0] = n_used
            bucket_ids[n_used] = b
            j = n_used
            n_used += 1
        slots[b, 1] += 1
        indices[i] = nwords + j
    return bucket_ids, n_used


class RowNumbering:
    """:func:`assign_rows` over a corpus encoded piece by piece (the pieces in corpus order).

    With ``bucket`` (rows below ``nwords + bucket``) at most :data:`DIRECT_MAX_BUCKET`, and
    ``expected_rows`` (bag rows to come; None: many) at least a quarter of it, through a direct
    map (:func:`assign_rows_direct`), else through a key table; the numbering is the same.
    """

    def __init__(self, nwords, bucket=None, expected_rows=None):
        self.nwords = int(nwords)
        self.slots = None
        if bucket is not None and 0 < bucket <= DIRECT_MAX_BUCKET and (
                expected_rows is None or expected_rows * _DIRECT_MIN_ROWS_PER_BUCKET >= bucket):
            self.slots = np.zeros((int(bucket), 2), np.int64)
            self.slots[:, 0] = -1
        # The key table starts with room for every row that may come (at most _KEY_START_ROWS):
        # growing it calls _grown, one more kernel for a process to load from Numba's cache
        # (TREC-6: 28.8k distinct buckets in 117k rows; the table grew 12 times, from 16 slots).
        keys_room = min(int(expected_rows), _KEY_START_ROWS) if expected_rows is not None else 0
        bits = table_bits(keys_room)
        self.state = (np.full(1 << bits, EMPTY, np.uint64), bits, np.empty(max(keys_room, 16), np.int32),
                      np.empty(max(keys_room, 16), np.int64), 0)

    def feed(self, indices):
        """Rewrite the hashed rows of ``indices`` (int32, writable) in place."""
        keys, bits, ids, counts, n_used = self.state
        if self.slots is not None:
            ids, n_used = assign_rows_direct(indices, self.nwords, self.slots, ids, n_used)
            if n_used < 0:
                raise ValueError(f"a hashed row lies beyond nwords + bucket ({self.nwords} + {len(self.slots)})")
        else:
            i = 0
            while True:
                i, n_used = assign_rows_from(indices, i, self.nwords, keys, bits, ids, counts, n_used)
                if i == indices.size:
                    break
                if 2 * (n_used + 1) + 2 > keys.size:
                    keys, bits = _grown(keys, bits)
                if n_used == ids.size:
                    ids, counts = _doubled(ids, n_used), _doubled(counts, n_used)
        self.state = (keys, int(bits), ids, counts, int(n_used))

    def result(self):
        """``(bucket_ids, counts)`` as :func:`assign_rows` returns them."""
        _, _, ids, counts, n_used = self.state
        ids = ids[:n_used].copy()
        if self.slots is not None:
            return ids, self.slots[ids, 1]
        return ids, counts[:n_used].copy()


def _doubled(a, n):
    """A copy of ``a[:n]`` with room for ``2 * n`` items."""
    out = np.empty(2 * n, a.dtype)
    out[:n] = a[:n]
    return out


@njit(**BYTES)
def _grow_copy(a, n):
    out = np.empty(n, a.dtype)
    out[: a.size] = a
    return out


def prune_rows(indices, nwords, counts, min_count):
    """Drop compact n-gram rows seen fewer than ``min_count`` times; renumber the rest in place.

    A kept row moves to its rank among the kept rows; a dropped one to ``nwords + n_kept``, the
    zero row. Returns the mask of kept rows, bool[len(counts)].
    """
    new_id = np.empty(counts.size, np.int64)
    _prune_rows(indices, nwords, counts, min_count, new_id)
    return new_id >= 0


@njit(**BYTES)
def _prune_rows(indices, nwords, counts, min_count, new_id):
    """:func:`prune_rows` with its scratch ``new_id`` (int64[len(counts)]) from the caller:
    allocating it here made the kernel's bitcode 24.5 kB instead of 12.1 kB, which a
    process parses when it loads the kernel from Numba's cache."""
    n_used = counts.size
    n_kept = 0
    for j in range(n_used):
        if counts[j] >= min_count:
            new_id[j] = n_kept
            n_kept += 1
        else:
            new_id[j] = -1
    unseen = nwords + n_kept
    for i in range(indices.size):
        r = np.int64(indices[i])
        if r >= nwords:
            j = new_id[r - nwords]
            indices[i] = unseen if j < 0 else nwords + j


def corpus_rows(indices, nwords, min_count_ngram, bucket=None):
    """Give the training corpus its final rows (in place); returns the kept ``bucket_ids``.

    Buckets are numbered by first appearance (:func:`assign_rows`), then those seen fewer than
    ``min_count_ngram`` times are dropped to the zero row (:func:`prune_rows`).
    """
    bucket_ids, counts = assign_rows(indices, nwords, bucket)
    if min_count_ngram > 1 and bucket_ids.size:
        bucket_ids = bucket_ids[prune_rows(indices, nwords, counts, int(min_count_ngram))]
    return bucket_ids
