"""Pass 1 on several cores: the pieces of :meth:`fastembed.text.scan.Scanner.feed`'s split.

A block of text is cut at line ends into one byte range per core; each range is scanned into a
table of its own at the same time (:mod:`fastembed.text.scan`'s kernel, which releases the GIL),
then the ranges are merged serially, in text order: :func:`merge_entries` numbers a range's
entries as the serial scan would have (known ones keep their id and get their counts added, new
ones follow in their order of first appearance), :func:`remap_tokens` rewrites its token ids.
"""

from __future__ import annotations

import os

import numpy as np

from fastembed.jit import BYTES, njit, prefetch_row
from fastembed.text.hashing import EMPTY, ID_MASK, NEWLINE, _find, _put_entry, _slot

# The text is scanned in blocks of SPLIT_BLOCK_BYTES (the helpers' buffers hold one range of one
# block: memory bounded by the block), each cut into one range per core; a text below
# SPLIT_MIN_BYTES stays serial (no thread started for it).
SPLIT_BLOCK_BYTES = 16 << 20
SPLIT_MIN_BYTES = 1 << 20
MAX_PARTS = 8
_MERGE_AHEAD = 16  # entries between a table slot's prefetch and its look-up


def usable_cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def split_parts(threads=0):
    """Ranges of a block scanned at once: ``threads`` (0: every usable core), at most MAX_PARTS
    and at most the usable cores. A training's ``threads=1`` (a process of a grid search, say)
    thus reads on its own thread too."""
    parts = min(usable_cores(), MAX_PARTS)
    return max(1, min(parts, int(threads))) if threads else parts


@njit(**BYTES)
def next_line_start(data, i):
    """The first line start at or after byte ``i`` (``data.size`` when no line starts there)."""
    n = data.size
    if i <= 0:
        return 0
    while i < n and data[i - 1] != NEWLINE:
        i += 1
    return min(i, n)


@njit(**BYTES)
def merge_entries(st, table, bits, e_hash, e_count, e_label, e_off, pool,
                   p_hash, p_count, p_label, p_off, p_pool, p_nent, remap):
    """Add the entries ``0..p_nent-1`` of a partial scan (the text that follows) to a table.

    In their order (first appearance in the part): an entry already known gets its count
    added, a new one the next id, as the serial scan would have numbered it. ``remap[j]`` is
    the id of part entry ``j``. The caller has made room for ``p_nent`` more entries, their
    bytes and their table slots.
    """
    nent = st[2]
    rows = table.reshape((table.size, 1))
    offs = e_off.reshape((e_off.size, 1))
    half = _MERGE_AHEAD // 2
    for j in range(p_nent):
        # cache misses otherwise: the table slot of a later entry, then (its slot loaded by now)
        # the offsets of the entry it holds
        if j + _MERGE_AHEAD < p_nent:
            prefetch_row(rows, _slot(p_hash[j + _MERGE_AHEAD], bits))
        if j + half < p_nent:
            key = table[_slot(p_hash[j + half], bits)]
            if key != EMPTY:
                prefetch_row(offs, np.int64(key & ID_MASK))
        s = p_off[j]
        ln = p_off[j + 1] - s
        h = p_hash[j]
        e = _find(table, bits, e_off, pool, p_pool, s, ln, h)
        if e < 0:
            _put_entry(table, -1 - e, e_hash, e_count, e_label, e_off, pool, nent, p_pool, s, ln, h, p_label[j])
            e = nent
            nent += 1
        e_count[e] += p_count[j]
        remap[j] = e
    st[2] = nent


@njit(**BYTES)
def remap_tokens(remap, src, n, dst, at):
    """``dst[at:at + n] = remap[src[:n]]``; every ``src`` id is a part entry (< ``remap.size``).
    (``np.take``: 9 ns a token here, against ~2 for this loop.)"""
    for k in range(n):
        dst[at + k] = remap[src[k]]
