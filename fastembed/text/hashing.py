"""fastText's token hashing and the open-addressing table that finds tokens by it.

Shared by the scanner (pass 1, :mod:`fastembed.text.scan`), the encoder (pass 2,
:mod:`fastembed.text.encode`) and dictionary look-ups: FNV-1a over bytes taken as
*signed* chars (``h ^= uint32(int8(c)); h *= 16777619``), fastText's separators, and one
probe routine (:func:`find_entry`) for scanning and look-ups alike.
"""

from __future__ import annotations

import numpy as np

from fastembed.jit import BYTES, njit

FNV_OFFSET = np.uint64(2166136261)
FNV_PRIME = np.uint64(16777619)
MASK32 = np.uint64(0xFFFFFFFF)
SIGN_EXT8 = np.uint64(0xFFFFFF00)
NGRAM_MUL = np.uint64(116049371)
FIB_MUL = np.uint64(0x9E3779B97F4A7C15)
U32 = np.uint64(32)
EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
ID_MASK = np.uint64(0x7FFFFFFF)
SEPARATOR_BYTES = (0, 9, 10, 11, 12, 13, 32)  # fastText's separators: never inside a token
# bit c set <=> byte c is a separator (the kernels' test, _is_sep)
SEP_MASK = np.uint64(sum(1 << c for c in SEPARATOR_BYTES))
# IS_SEPARATOR[c] <=> byte c is a separator (NumPy's test, on arrays of bytes)
IS_SEPARATOR = np.zeros(256, dtype=bool)
IS_SEPARATOR[list(SEPARATOR_BYTES)] = True
NEWLINE = 10


def as_readonly_u8(a) -> np.ndarray:
    """Return a read-only, C-contiguous ``uint8`` view (or copy, if needed) of ``a``."""
    a = np.ascontiguousarray(a, dtype=np.uint8).reshape(-1)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


@njit(**BYTES)
def _is_sep(c):
    return c <= 32 and ((SEP_MASK >> np.uint64(c)) & np.uint64(1)) != 0


@njit(**BYTES)
def _fnv_step(h, c):
    v = np.uint64(c)
    if c >= 128:  # the byte as a signed char, sign-extended to 32 bits
        v |= SIGN_EXT8
    return ((h ^ v) * FNV_PRIME) & MASK32


def fnv1a_bytes(b: bytes) -> int:
    """:func:`fnv1a_range` of all of ``b``, in plain Python: for a few bytes known before any
    kernel runs (the scanner's ``</s>``), where calling the kernel would cost a process its
    load from Numba's cache (3-5 ms of CPU measured in a TREC-6 training)."""
    h = int(FNV_OFFSET)
    for c in b:
        h = ((h ^ (c | int(SIGN_EXT8) if c >= 128 else c)) * int(FNV_PRIME)) & int(MASK32)
    return h


@njit(**BYTES)
def fnv1a_range(data, start, end):
    """fastText hash of ``data[start:end]`` (``uint64`` holding a uint32 value)."""
    h = FNV_OFFSET
    for i in range(start, end):
        h = _fnv_step(h, data[i])
    return h


@njit(**BYTES)
def _slot(h, bits):
    return np.int64((h * FIB_MUL) >> (np.uint64(64) - np.uint64(bits)))


@njit(**BYTES)
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


@njit(**BYTES)
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


@njit(**BYTES)
def _put_entry(table, slot, e_hash, e_count, e_label, e_off, pool, nent, src, start, ln, h, label):
    """Append entry ``nent`` (capacity already checked): its bytes ``src[start:start+ln]``, hash
    ``h``, a zero count and ``label``, at the free ``slot`` that :func:`_find` gave."""
    p = e_off[nent]
    for k in range(ln):
        pool[p + k] = src[start + k]
    e_off[nent + 1] = p + ln
    e_hash[nent] = h
    e_count[nent] = 0
    e_label[nent] = label
    table[slot] = (h << U32) | np.uint64(nent)



@njit(**BYTES)
def hash_entries(pool, off):
    """FNV-1a hash of every entry of a pool: ``uint64[n]`` (uint32 values)."""
    m = off.size - 1
    out = np.empty(m, np.uint64)
    for j in range(m):
        out[j] = fnv1a_range(pool, off[j], off[j + 1])
    return out


@njit(**BYTES)
def build_table(e_hash, n):
    """Open-addressing table over the first ``n`` hashes (load <= 1/2).

    Returns ``(table uint64[2**bits], bits)``; keys are ``hash << 32 | id``.
    """
    bits = 4
    while (np.int64(1) << bits) < 2 * n + 2:
        bits += 1
    return _fill_table(e_hash, n, bits), bits


@njit(**BYTES)
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


