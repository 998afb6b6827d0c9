"""One line of text to its final input rows, straight from its bytes (the prediction path).

:meth:`Dictionary.encode` runs the two corpus passes (:mod:`.scan`, :mod:`.encode`), which pay
off on a corpus; a line to predict needs none of that: its tokens are hashed and looked up in
the dictionary's table as they are read, as fastText's ``getLine`` does. The rows are those
:meth:`Dictionary.encode` gives the same line (``keep_unlabelled=True``): word ids, character
n-grams, the ``</s>`` closing the line, word n-grams, every bucket through the row map.

The dictionary's part of the kernels' arguments is one :class:`LineVocab`
(:meth:`Dictionary.line_vocab`), so that a kernel call unboxes one tuple.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fastembed.jit import BYTES, njit, prefetch_row
from fastembed.text.encode import subword_rows, word_ngram_buckets
from fastembed.text.hashing import FNV_OFFSET, _find, _fnv_step, _is_sep, _slot
from fastembed.text.ngram_rows import bucket_row

_HIGH32 = np.uint64(0xFFFFFFFF00000000)
_SIGN32 = np.uint64(0x80000000)


class LineVocab(NamedTuple):
    """What the line kernels read of a dictionary (built by :meth:`Dictionary.line_vocab`).

    ``table``/``bits``/``pool``/``offsets``: the token table of words then labels
    (:func:`fastembed.text.hashing.build_table`); ``row_keys``/``row_bits``/``unseen_row``: the
    n-gram row map (:mod:`fastembed.text.ngram_rows`); ``eos_id``: the word id of ``</s>``, -1 if
    it is not a word; ``eos_hash``: its hash.
    """

    prefix: np.ndarray
    table: np.ndarray
    bits: int
    pool: np.ndarray
    offsets: np.ndarray
    row_keys: np.ndarray
    row_bits: int
    unseen_row: int
    nwords: int
    bucket: int
    minn: int
    maxn: int
    word_ngrams: int
    eos_id: int
    eos_hash: int


@njit(**BYTES)
def row_capacity(vocab, n_bytes):
    """Rows and word tokens a line of ``n_bytes`` bytes can give, at most: ``(rows, tokens)``.

    ``tokens`` counts ``</s>``: tokens are at least one byte apart. Each gives its id and starts
    ``word_ngrams - 1`` word n-grams at most; a token of ``l`` bytes has at most ``l + 2``
    character n-gram starts (``'<' + token + '>'``), each of ``maxn - max(minn, 1) + 1``
    lengths at most, and the ``l + 2`` add up to at most ``n_bytes + tokens + 1``.
    """
    tokens = n_bytes // 2 + 2
    lengths = vocab.maxn - max(vocab.minn, 1) + 1 if vocab.maxn > 0 and vocab.bucket > 0 else 0
    return tokens * vocab.word_ngrams + (n_bytes + tokens + 1) * max(lengths, 0), tokens


@njit(**BYTES)
def _ngram_hash(h):
    """A token hash (uint32 value) as fastText's word n-grams take it: int32, sign-extended."""
    v = np.uint64(h)
    return v | _HIGH32 if v & _SIGN32 else v


@njit(**BYTES)
def _has_prefix(data, start, ln, prefix):
    if ln < prefix.size:
        return False
    for k in range(prefix.size):
        if data[start + k] != prefix[k]:
            return False
    return True


@njit(**BYTES)
def _is_eos_token(data, start, ln):
    # b"</s>"
    return ln == 4 and data[start] == 60 and data[start + 1] == 47 and data[start + 2] == 115 \
        and data[start + 3] == 62


@njit(**BYTES)
def prefetch_item(a, i):
    """Ask for the cache line of ``a[i]`` (1-D): a column view makes it a row to prefetch."""
    prefetch_row(a.reshape((a.size, 1)), i)


@njit(**BYTES)
def _prefetch_slot(table, bits, h):
    """Ask for the cache line of the slot where a look-up of hash ``h`` starts."""
    prefetch_item(table, _slot(h, bits))


@njit(**dict(BYTES, inline="always"))
def next_token(data, i, end):
    """The first token of ``data[i:end]``: ``(start, stop, fastText hash)``; ``start == end`` if none."""
    while i < end and _is_sep(data[i]):
        i += 1
    s = i
    h = FNV_OFFSET
    while i < end and not _is_sep(data[i]):
        h = _fnv_step(h, data[i])
        i += 1
    return s, i, h


@njit(**BYTES)
def line_rows(data, start, end, vocab, rows, hashes, spans, buf):
    """Final rows of the line ``data[start:end]`` (no ``'\\n'`` inside) into ``rows``; returns their count.

    ``rows``, ``hashes`` and ``spans`` (twice the tokens) hold at least :func:`row_capacity`'s
    counts for ``end - start`` bytes, ``buf`` at least ``end - start + 2`` bytes. Label tokens
    (with the prefix, known or not) are dropped, as in prediction.

    The look-ups are random reads of tables of megabytes: the tokens are first hashed and
    their table slots requested (prefetched), then looked up; the word n-gram buckets likewise.
    Measured on 20 Newsgroups documents (280 tokens; tables of 4 and 16 MB): about 150 -> 130 us
    a document on a busy machine.
    """
    nwords = vocab.nwords
    # 1. tokens: spans and hashes of the words; their slots requested
    nw = 0
    i = start
    while True:
        s, i, h = next_token(data, i, end)
        if s >= end:
            break
        if _has_prefix(data, s, i - s, vocab.prefix):
            continue
        _prefetch_slot(vocab.table, vocab.bits, h)
        spans[2 * nw] = s
        spans[2 * nw + 1] = i
        hashes[nw] = h
        nw += 1
    # 2. word ids and character n-grams
    char_ngrams = vocab.maxn > 0 and vocab.bucket > 0
    n = 0
    for t in range(nw):
        s = spans[2 * t]
        ln = spans[2 * t + 1] - s
        e = _find(vocab.table, vocab.bits, vocab.offsets, vocab.pool, data, s, ln, hashes[t])
        if 0 <= e < nwords:
            rows[n] = e
            n += 1
        if char_ngrams and not _is_eos_token(data, s, ln):
            n = subword_rows(data, s, s + ln, vocab.minn, vocab.maxn, vocab.bucket, nwords, vocab.row_keys,
                             vocab.row_bits, vocab.unseen_row, rows, n, buf)
        hashes[t] = _ngram_hash(hashes[t])
    # the </s> that ends every line
    if vocab.eos_id >= 0:
        rows[n] = vocab.eos_id
        n += 1
    hashes[nw] = _ngram_hash(vocab.eos_hash)
    nw += 1
    # 3. word n-grams: buckets, their slots requested, then their rows
    if vocab.word_ngrams > 1 and vocab.bucket > 0:
        first = n
        n = word_ngram_buckets(hashes, nw, vocab.word_ngrams, vocab.bucket, rows, n)
        for j in range(first, n):
            _prefetch_slot(vocab.row_keys, vocab.row_bits, np.uint64(rows[j]))
        for j in range(first, n):
            rows[j] = bucket_row(vocab.row_keys, vocab.row_bits, nwords, vocab.unseen_row, np.int64(rows[j]))
    return n
