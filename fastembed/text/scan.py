"""Pass 1 of the text pipeline: tokenise the bytes, hash and count distinct tokens.

Everything here works on raw bytes (``uint8`` arrays) and plain integer arrays;
the Python layer (:mod:`fastembed.text.dictionary`) only allocates, sorts the
vocabulary with NumPy and wires the kernels together.  Pass 2 is
:mod:`fastembed.text.encode`; hashing and the token table are
:mod:`fastembed.text.hashing`.

Conventions shared by all text kernels
--------------------------------------
* ``data`` is always passed as a **read-only**, C-contiguous ``uint8`` view (the
  Python layer makes one with :func:`as_readonly_u8`), so every kernel is
  compiled for exactly one array type whatever the source (``np.fromfile``,
  ``np.frombuffer(bytes)``, ...).  Integer scalars are passed as Python ``int``
  (Numba ``int64``), flags as ``int`` 0/1: one compiled variant per kernel.
* Tokenisation is fastText's ``Dictionary::readWord``: separators are
  ``' ' '\\n' '\\r' '\\t' '\\v' '\\f' '\\0'``; ``'\\n'`` ends a line and is read as
  the end-of-sentence token ``</s>``.
* Hashing is fastText's 32-bit FNV-1a over the bytes taken as *signed* chars:
  ``h ^= uint32(int8(c)); h *= 16777619``.
* An *entry* is one distinct token of a scanned text, numbered by first
  appearance.  Its bytes live in a byte pool: entry ``e`` is
  ``pool[off[e]:off[e + 1]]``.

All kernels are ``@njit(cache=True, nogil=True)`` and serial (one core); the
two drivers :func:`scan_corpus` and :func:`encode_lines` are plain Python that
only grow/shrink buffers between kernel calls.
"""


from __future__ import annotations

import numpy as np

from fastembed.jit import BYTES, njit
from fastembed.text.hashing import (
    EMPTY,
    FNV_OFFSET,
    NEWLINE,
    U32,
    _find,
    _fnv_step,
    _is_sep,
    _rehash,
    fnv1a_range,
)

KIND_WORD = 0
KIND_LABEL = 1

@njit(**BYTES)
def _insert(table, slot, e_hash, e_count, e_label, e_off, pool, nent, src, start, ln, h, prefix):
    """Append entry ``nent`` (capacity already checked) at free ``slot``."""
    p = e_off[nent]
    for k in range(ln):
        pool[p + k] = src[start + k]
    e_off[nent + 1] = p + ln
    e_hash[nent] = h
    e_count[nent] = 0
    klen = prefix.size
    lab = 0
    if ln >= klen:
        lab = 1
        for k in range(klen):
            if src[start + k] != prefix[k]:
                lab = 0
                break
    e_label[nent] = lab
    table[slot] = (h << U32) | np.uint64(nent)


@njit(**BYTES)
def _scan_chunk(data, i, prefix, eos, eos_h, st, table, bits, e_hash, e_count, e_label, e_off, pool, tok, line_end):
    """Scan from byte ``i`` until the end or until a buffer is full.

    ``st`` is int64[4]: ``ntok, nlines, nent, eos_e``, updated in place.
    Never reallocates: returns ``(i, need)`` where ``need`` is 0 at the end of
    the data, 1 when a buffer must grow before going on (``i`` is then the
    start of the token that did not fit; ``need_pool`` bytes in ``st``-order).
    """
    n = data.size
    ntok = st[0]
    nlines = st[1]
    nent = st[2]
    eos_e = st[3]
    tokcap = tok.size
    linecap = line_end.size
    ecap = e_hash.size
    maxent = ((np.int64(1) << bits) * 5) // 8  # table load <= 5/8
    need = 0
    while True:
        # room for one more token, line and entry (and its table slot)
        if ntok >= tokcap or nlines >= linecap or nent >= ecap or nent + 1 > maxent:
            need = 1
            break
        while i < n:
            c = data[i]
            if c == NEWLINE or not _is_sep(c):
                break
            i += 1
        if i >= n:
            break
        if data[i] == NEWLINE:
            if eos_e < 0:
                e = _find(table, bits, e_off, pool, eos, 0, eos.size, eos_h)
                if e < 0:
                    if e_off[nent] + eos.size > pool.size:
                        need = 1
                        break
                    _insert(table, -1 - e, e_hash, e_count, e_label, e_off, pool, nent, eos, 0, eos.size, eos_h, prefix)
                    e = nent
                    nent += 1
                eos_e = e
            i += 1
            e_count[eos_e] += 1
            tok[ntok] = eos_e
            ntok += 1
            line_end[nlines] = ntok
            nlines += 1
            continue
        start = i
        h = FNV_OFFSET
        while i < n:
            c = data[i]
            if _is_sep(c):
                break
            h = _fnv_step(h, c)
            i += 1
        ln = i - start
        e = _find(table, bits, e_off, pool, data, start, ln, h)
        if e < 0:
            if e_off[nent] + ln > pool.size:
                i = start
                need = 1
                break
            _insert(table, -1 - e, e_hash, e_count, e_label, e_off, pool, nent, data, start, ln, h, prefix)
            e = nent
            nent += 1
        e_count[e] += 1
        tok[ntok] = e
        ntok += 1
    st[0] = ntok
    st[1] = nlines
    st[2] = nent
    st[3] = eos_e
    return i, need


@njit(**BYTES)
def _close_last_line(data, prefix, eos, eos_h, st, table, bits, e_hash, e_count, e_label, e_off, pool, tok, line_end):
    """Close a final line without ``'\\n'`` with an uncounted ``</s>`` token.

    The caller guarantees room for one more token, line, entry and ``eos`` bytes.
    """
    ntok = st[0]
    nlines = st[1]
    nent = st[2]
    eos_e = st[3]
    if eos_e < 0:
        e = _find(table, bits, e_off, pool, eos, 0, eos.size, eos_h)
        if e < 0:  # never seen: a zero-count entry (always below min_count)
            _insert(table, -1 - e, e_hash, e_count, e_label, e_off, pool, nent, eos, 0, eos.size, eos_h, prefix)
            e = nent
            nent += 1
        eos_e = e
    tok[ntok] = eos_e
    ntok += 1
    line_end[nlines] = ntok
    nlines += 1
    st[0] = ntok
    st[1] = nlines
    st[2] = nent
    st[3] = eos_e


def _resize(a: np.ndarray, n: int) -> np.ndarray:
    """Grow or shrink a NumPy-owned array in place (``realloc``: ``mremap`` for big blocks, no copy)."""
    a.resize(n, refcheck=False)
    return a


def scan_corpus(data, prefix, eos):
    """Pass 1: tokenise ``data``, hash every token, count distinct tokens.

    One sequential pass over the bytes (:func:`_scan_chunk`, Numba).  Each
    token is hashed while it is read and looked up in an open-addressing
    table (linear probing, load <= 5/8, keys ``hash << 32 | entry``); a new
    token gets the next entry id and its bytes are copied to the pool, so
    ``data`` is not needed afterwards.  The scan never reallocates: this
    Python driver grows the buffers between chunks, in place with ``realloc``
    (factor 1.5), and trims them at the end.

    Parameters
    ----------
    data : uint8[n_bytes], read-only
        The corpus bytes.
    prefix : uint8[k], read-only
        Label prefix (``b"__label__"``); an entry whose bytes start with it is a label.
    eos : uint8[4], read-only
        ``b"</s>"``.

    Returns
    -------
    tok : int32[n_tok]
        Entry id of every token, in text order, an ``</s>`` token closing every
        line.  A final line without ``'\\n'`` also gets an ``</s>`` token, but
        it is not counted (fastText counts ``</s>`` once per newline).
        NumPy-owned and exactly sized: :func:`encode_lines` consumes it.
    line_end : int64[n_lines]
        ``tok[line_end[l-1]:line_end[l]]`` are the tokens of line ``l``.
        A final line without a newline exists iff any byte follows the last
        newline.
    e_hash : uint64[n_ent]
        FNV-1a hash (uint32 value) of each entry.
    e_count : int64[n_ent]
        Occurrences, as fastText's ``Dictionary::add`` counts them.
    e_label : uint8[n_ent]
        1 if the entry starts with ``prefix``.
    e_off : int64[n_ent + 1]
        Entry ``e`` is ``pool[e_off[e]:e_off[e + 1]]``.
    pool : uint8[e_off[-1]]
        Entry bytes, entries in first-appearance order.
    """
    n = int(data.size)
    eos_h = np.uint64(fnv1a_range(eos, 0, eos.size))  # a uint64 scalar, not a Python int (int64)
    tok = np.empty(n // 4 + 16, np.int32)
    line_end = np.empty(n // 64 + 16, np.int64)
    ecap = 4096
    e_hash = np.empty(ecap, np.uint64)
    e_count = np.empty(ecap, np.int64)
    e_label = np.empty(ecap, np.uint8)
    e_off = np.zeros(ecap + 1, np.int64)
    pool = np.empty(65536, np.uint8)
    bits = 13
    table = np.full(1 << bits, EMPTY, np.uint64)
    st = np.array([0, 0, 0, -1], np.int64)

    def grow(room):
        nonlocal tok, line_end, e_hash, e_count, e_label, e_off, pool, table, bits
        ntok, nlines, nent = int(st[0]), int(st[1]), int(st[2])
        if ntok + 1 > tok.size:
            tok = _resize(tok, tok.size * 3 // 2 + 16)
        if nlines + 1 > line_end.size:
            line_end = _resize(line_end, line_end.size * 3 // 2 + 16)
        if nent + 1 > e_hash.size:
            cap = e_hash.size * 3 // 2 + 16
            e_hash, e_count, e_label = _resize(e_hash, cap), _resize(e_count, cap), _resize(e_label, cap)
            e_off = _resize(e_off, cap + 1)
        if nent + 1 > ((1 << bits) * 5) // 8:
            table, bits = _rehash(e_hash, nent, bits)
            bits = int(bits)
        if e_off[nent] + room > pool.size:
            pool = _resize(pool, max(2 * pool.size, int(e_off[nent]) + room))

    i = 0
    while True:
        i, need = _scan_chunk(data, i, prefix, eos, eos_h, st, table, bits, e_hash, e_count, e_label, e_off, pool, tok, line_end)
        if not need:
            break
        # room for the pending token (bytes up to the next separator)
        grow(max(int(_token_end(data, i)) - i, eos.size))
    if n > 0 and data[n - 1] != NEWLINE:
        grow(eos.size)
        _close_last_line(data, prefix, eos, eos_h, st, table, bits, e_hash, e_count, e_label, e_off, pool, tok, line_end)
    ntok, nlines, nent = int(st[0]), int(st[1]), int(st[2])
    del table
    return (
        _resize(tok, ntok),
        _resize(line_end, nlines),
        _resize(e_hash, nent),
        _resize(e_count, nent),
        _resize(e_label, nent),
        _resize(e_off, nent + 1),
        _resize(pool, int(e_off[nent])),
    )


@njit(**BYTES)
def _token_end(data, i):
    n = data.size
    while i < n and not _is_sep(data[i]):
        i += 1
    return i


@njit(**BYTES)
def gather_entries(pool, off, sel):
    """Concatenate the bytes of entries ``sel`` (int64[m]) into a new pool.

    Returns ``(pool2 uint8[...], off2 int64[m + 1])``.
    """
    m = sel.size
    off2 = np.empty(m + 1, np.int64)
    off2[0] = 0
    for j in range(m):
        e = sel[j]
        off2[j + 1] = off2[j] + (off[e + 1] - off[e])
    pool2 = np.empty(off2[m], np.uint8)
    for j in range(m):
        e = sel[j]
        p = off[e]
        q = off2[j]
        for k in range(off[e + 1] - p):
            pool2[q + k] = pool[p + k]
    return pool2, off2


