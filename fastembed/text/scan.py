"""Numba kernels of the text pipeline: scan, hash, count, encode.

Everything here works on raw bytes (``uint8`` arrays) and plain integer arrays;
the Python layer (:mod:`fastembed.text.dictionary`) only allocates, sorts the
vocabulary with NumPy and wires the kernels together.

Conventions shared by all kernels
---------------------------------
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
from numba import njit

_NJIT = dict(cache=True, nogil=True, boundscheck=False, error_model="numpy")

FNV_OFFSET = np.uint64(2166136261)
FNV_PRIME = np.uint64(16777619)
MASK32 = np.uint64(0xFFFFFFFF)
SIGN_EXT8 = np.uint64(0xFFFFFF00)
NGRAM_MUL = np.uint64(116049371)
FIB_MUL = np.uint64(0x9E3779B97F4A7C15)
U32 = np.uint64(32)
EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
ID_MASK = np.uint64(0x7FFFFFFF)
# bit c set <=> byte c is a fastText separator (c in 0, 9..13, 32)
SEP_MASK = np.uint64((1 << 0) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 32))
NEWLINE = 10
KIND_WORD = 0
KIND_LABEL = 1


def as_readonly_u8(a) -> np.ndarray:
    """Return a read-only, C-contiguous ``uint8`` view (or copy, if needed) of ``a``."""
    a = np.ascontiguousarray(a, dtype=np.uint8).reshape(-1)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


@njit(**_NJIT)
def _is_sep(c):
    return c <= 32 and ((SEP_MASK >> np.uint64(c)) & np.uint64(1)) != 0


@njit(**_NJIT)
def _fnv_step(h, c):
    v = np.uint64(c)
    if c >= 128:  # the byte as a signed char, sign-extended to 32 bits
        v |= SIGN_EXT8
    return ((h ^ v) * FNV_PRIME) & MASK32


@njit(**_NJIT)
def fnv1a_range(data, start, end):
    """fastText hash of ``data[start:end]`` (``uint64`` holding a uint32 value)."""
    h = FNV_OFFSET
    for i in range(start, end):
        h = _fnv_step(h, data[i])
    return h


@njit(**_NJIT)
def _slot(h, bits):
    return np.int64((h * FIB_MUL) >> (np.uint64(64) - np.uint64(bits)))


@njit(**_NJIT)
def _fill_table(e_hash, n, bits):
    """A table of ``2**bits`` slots holding entries ``0..n-1`` (key ``hash << 32 | id``)."""
    table = np.full(np.int64(1) << bits, EMPTY, np.uint64)
    mask = (np.int64(1) << bits) - 1
    for e in range(n):
        h = e_hash[e]
        s = _slot(h, bits)
        while table[s] != EMPTY:
            s = (s + 1) & mask
        table[s] = (h << U32) | np.uint64(e)
    return table


@njit(**_NJIT)
def _rehash(e_hash, nent, bits):
    """The table grown to twice the slots, entries re-inserted."""
    return _fill_table(e_hash, nent, bits + 1), bits + 1


@njit(**_NJIT)
def _find(table, bits, e_off, pool, src, start, ln, h):
    """Entry of ``src[start:start+ln]`` (hash ``h``), or ``-1 - slot`` of the free slot."""
    mask = (np.int64(1) << bits) - 1
    s = _slot(h, bits)
    while True:
        key = table[s]
        if key == EMPTY:
            return -1 - s
        if (key >> U32) == h:
            e = np.int64(key & ID_MASK)
            p = e_off[e]
            if e_off[e + 1] - p == ln:
                same = True
                for k in range(ln):
                    if pool[p + k] != src[start + k]:
                        same = False
                        break
                if same:
                    return e
        s = (s + 1) & mask


@njit(**_NJIT)
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


@njit(**_NJIT)
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


@njit(**_NJIT)
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


@njit(**_NJIT)
def _token_end(data, i):
    n = data.size
    while i < n and not _is_sep(data[i]):
        i += 1
    return i


@njit(**_NJIT)
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


@njit(**_NJIT)
def hash_entries(pool, off):
    """FNV-1a hash of every entry of a pool: ``uint64[n]`` (uint32 values)."""
    m = off.size - 1
    out = np.empty(m, np.uint64)
    for j in range(m):
        out[j] = fnv1a_range(pool, off[j], off[j + 1])
    return out


@njit(**_NJIT)
def build_table(e_hash, n):
    """Open-addressing table over the first ``n`` hashes (load <= 1/2).

    Returns ``(table uint64[2**bits], bits)``; keys are ``hash << 32 | id``.
    """
    bits = 4
    while (np.int64(1) << bits) < 2 * n + 2:
        bits += 1
    return _fill_table(e_hash, n, bits), bits


@njit(**_NJIT)
def lookup_entries(table, bits, d_pool, d_off, q_hash, q_pool, q_off):
    """Id of every query entry in a dictionary table, -1 when absent.

    ``table``/``bits`` from :func:`build_table` over the dictionary's hashes;
    the dictionary's entry ``d`` is ``d_pool[d_off[d]:d_off[d + 1]]``; query
    entry ``q`` (hash ``q_hash[q]``) is ``q_pool[q_off[q]:q_off[q + 1]]``.
    Returns ``int32[n_query]``.
    """
    m = q_hash.size
    out = np.full(m, -1, np.int32)
    for q in range(m):
        qs = q_off[q]
        e = _find(table, bits, d_off, d_pool, q_pool, qs, q_off[q + 1] - qs, q_hash[q])
        if e >= 0:
            out[q] = e
    return out


@njit(**_NJIT)
def _subwords(pool, start, end, minn, maxn, bucket, nwords, out, pos, buf):
    """fastText's computeSubwords over ``'<' + pool[start:end] + '>'``.

    Writes rows ``nwords + hash(ngram) % bucket`` to ``out[pos:]`` (if ``out``
    has room; ``out.size == 0`` means count only) and returns the new ``pos``.
    ``buf`` is scratch of size >= end - start + 2.
    """
    ln = end - start + 2
    buf[0] = 60  # '<'
    for k in range(end - start):
        buf[k + 1] = pool[start + k]
    buf[ln - 1] = 62  # '>'
    b = np.uint64(bucket)
    for i in range(ln):
        if (buf[i] & 0xC0) == 0x80:
            continue
        h = FNV_OFFSET
        j = i
        nch = 1
        while j < ln and nch <= maxn:
            h = _fnv_step(h, buf[j])
            j += 1
            while j < ln and (buf[j] & 0xC0) == 0x80:
                h = _fnv_step(h, buf[j])
                j += 1
            if nch >= minn and not (nch == 1 and (i == 0 or j == ln)):
                if out.size > 0:
                    out[pos] = nwords + np.int64(h % b)
                pos += 1
            nch += 1
    return pos


@njit(**_NJIT)
def entry_rows(pool, off, wid, is_word, is_eos, nwords, bucket, minn, maxn):
    """Input-table rows each entry contributes to a bag (fastText's addSubwords).

    For a word entry: its id ``wid[e]`` if known (``>= 0``), then -- when
    ``maxn > 0`` and the entry is not ``</s>`` -- its character n-grams; an
    unknown word gives only its character n-grams.  Labels give nothing.

    Parameters
    ----------
    pool, off : the entries' bytes.
    wid : int32[m]  word id or -1.
    is_word, is_eos : uint8[m]  flags.
    nwords, bucket, minn, maxn : int

    Returns
    -------
    (rows_off int64[m + 1], rows int32[rows_off[-1]])
    """
    m = off.size - 1
    rows_off = np.empty(m + 1, np.int64)
    rows_off[0] = 0
    maxlen = 0
    for e in range(m):
        if off[e + 1] - off[e] > maxlen:
            maxlen = off[e + 1] - off[e]
    buf = np.empty(maxlen + 2, np.uint8)
    empty = np.empty(0, np.int32)
    sub = maxn > 0 and bucket > 0
    for e in range(m):
        cnt = 0
        if is_word[e]:
            if wid[e] >= 0:
                cnt = 1
            if sub and not is_eos[e]:
                cnt = _subwords(pool, off[e], off[e + 1], minn, maxn, bucket, nwords, empty, cnt, buf)
        rows_off[e + 1] = rows_off[e] + cnt
    rows = np.empty(rows_off[m], np.int32)
    for e in range(m):
        if is_word[e]:
            pos = rows_off[e]
            if wid[e] >= 0:
                rows[pos] = wid[e]
                pos += 1
            if sub and not is_eos[e]:
                _subwords(pool, off[e], off[e + 1], minn, maxn, bucket, nwords, rows, pos, buf)
    return rows_off, rows


@njit(**_NJIT)
def _n_word_ngrams(nw, n):
    # sum over i of min(n - 1, nw - 1 - i)
    if n <= 1 or nw <= 1:
        return 0
    tot = 0
    for i in range(nw):
        k = nw - 1 - i
        tot += k if k < n - 1 else n - 1
    return tot


@njit(**_NJIT)
def count_lines(tok, line_end, kind, label, rows_off, bucket, word_ngrams, keep_all):
    """Pass 2a: which lines are kept, and the CSR offsets of their bags and labels.

    Returns
    -------
    kidx : int64[n_lines]  output index of each line, -1 when dropped.
    offsets : int64[n_kept + 1], label_offsets : int64[n_kept + 1]
    ntokens : int32[n_kept]
    maxw : int  most word tokens in a kept line.
    """
    nlines = line_end.size
    ngr = word_ngrams > 1 and bucket > 0
    kidx = np.empty(nlines, np.int64)
    nkept = 0
    prev = 0
    for l in range(nlines):
        nl = 0
        for t in range(prev, line_end[l]):
            e = tok[t]
            if kind[e] != KIND_WORD and label[e] >= 0:
                nl += 1
        prev = line_end[l]
        if keep_all or nl > 0:
            kidx[l] = nkept
            nkept += 1
        else:
            kidx[l] = -1
    offsets = np.empty(nkept + 1, np.int64)
    lab_off = np.empty(nkept + 1, np.int64)
    ntokens = np.empty(nkept, np.int32)
    offsets[0] = 0
    lab_off[0] = 0
    maxw = 0
    prev = 0
    for l in range(nlines):
        start = prev
        prev = line_end[l]
        k = kidx[l]
        if k < 0:
            continue
        nw = 0
        nr = 0
        nl = 0
        for t in range(start, prev):
            e = tok[t]
            if kind[e] == KIND_WORD:
                nw += 1
                nr += rows_off[e + 1] - rows_off[e]
            elif label[e] >= 0:
                nl += 1
        if ngr:
            nr += _n_word_ngrams(nw, word_ngrams)
        if nw > maxw:
            maxw = nw
        offsets[k + 1] = offsets[k] + nr
        lab_off[k + 1] = lab_off[k] + nl
        ntokens[k] = prev - start
    return kidx, offsets, lab_off, ntokens, maxw


@njit(**_NJIT)
def fill_lines(tok, line_end, l0, l1, kidx, offsets, lab_off, kind, label, ehash, rows_off, rows,
               nwords, bucket, word_ngrams, indices, lab_idx, hbuf):  # fmt: skip
    """Pass 2b: write the bags and labels of lines ``l0..l1-1`` (fastText's getLine).

    Per line, in order: every word token's rows (``rows_off``/``rows`` of its
    entry), then the word n-grams (2..``word_ngrams`` consecutive word tokens,
    known or not, ``</s>`` included) hashed as fastText's addWordNgrams:
    ``h = uint64(int64(hash_i)); h = h * 116049371 + uint64(int64(hash_j))``,
    row ``nwords + h % bucket``.  Label tokens with a known label id add it
    to the line's labels (duplicates kept, as fastText).
    """
    ngr = word_ngrams > 1 and bucket > 0
    b = np.uint64(max(bucket, 1))
    for l in range(l0, l1):
        k = kidx[l]
        if k < 0:
            continue
        start = line_end[l - 1] if l > 0 else 0
        pos = offsets[k]
        lpos = lab_off[k]
        nw = 0
        for t in range(start, line_end[l]):
            e = tok[t]
            if kind[e] == KIND_WORD:
                for r in range(rows_off[e], rows_off[e + 1]):
                    indices[pos] = rows[r]
                    pos += 1
                hbuf[nw] = np.uint64(np.int64(ehash[e]))
                nw += 1
            elif label[e] >= 0:
                lab_idx[lpos] = label[e]
                lpos += 1
        if ngr:
            for i in range(nw):
                h = hbuf[i]
                jmax = min(nw, i + word_ngrams)
                for j in range(i + 1, jmax):
                    h = h * NGRAM_MUL + hbuf[j]
                    indices[pos] = nwords + np.int64(h % b)
                    pos += 1


def encode_lines(tok, line_end, kind, label, ehash, rows_off, rows, nwords, bucket, word_ngrams, keep_all,
                 n_chunks=16):  # fmt: skip
    """Pass 2: bags of rows and label lists, per line; **consumes** ``tok``.

    The offsets are counted first (:func:`count_lines`), then the lines are
    filled (:func:`fill_lines`) in chunks from the last one to the first,
    ``tok`` being shrunk in place after each chunk: the output's pages are
    touched as the token ids are released, so both are never resident in full
    at once.  ``tok`` must be NumPy-owned with no views (as
    :func:`scan_corpus` returns it); it is empty afterwards.

    Parameters
    ----------
    tok : int32[n_tok]  entry per token.
    line_end : int64[n_lines]
    kind : uint8[m]  KIND_WORD / KIND_LABEL per entry.
    label : int32[m]  label id of a label entry, -1 if unknown.
    ehash : int32[m]  fastText hash of each entry, as int32.
    rows_off : int64[m + 1], rows : int32[...]  see :func:`entry_rows`.
    nwords, bucket, word_ngrams : int
    keep_all : int  1 keeps every line; 0 drops lines with no known label.

    Returns
    -------
    indices int32[nnz], offsets int64[n_kept + 1],
    label_indices int32[nl], label_offsets int64[n_kept + 1],
    ntokens int32[n_kept], n_skipped int
    """
    kidx, offsets, lab_off, ntokens, maxw = count_lines(tok, line_end, kind, label, rows_off, bucket, word_ngrams, keep_all)
    indices = np.empty(int(offsets[-1]), np.int32)
    lab_idx = np.empty(int(lab_off[-1]), np.int32)
    hbuf = np.empty(int(maxw), np.uint64)
    nlines = len(line_end)
    # chunk boundaries (line numbers) with about equal token counts
    bounds = np.unique(np.searchsorted(line_end, np.linspace(0, len(tok), n_chunks + 1)[1:-1], side="right"))
    bounds = [0] + [int(x) for x in bounds if 0 < x < nlines] + [nlines]
    for c in range(len(bounds) - 1, 0, -1):
        l0, l1 = bounds[c - 1], bounds[c]
        fill_lines(tok, line_end, l0, l1, kidx, offsets, lab_off, kind, label, ehash, rows_off, rows,
                   nwords, bucket, word_ngrams, indices, lab_idx, hbuf)  # fmt: skip
        _resize(tok, int(line_end[l0 - 1]) if l0 > 0 else 0)
    return indices, offsets, lab_idx, lab_off, ntokens, nlines - (len(offsets) - 1)
