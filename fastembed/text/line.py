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

from fastembed.jit import BYTES, njit
from fastembed.text.encode import subword_rows, word_ngram_rows
from fastembed.text.hashing import FNV_OFFSET, _find, _fnv_step, _is_sep

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

    Tokens are at least one byte apart, plus ``</s>``; a token of ``l`` bytes has at most
    ``(l + 2) * maxn`` character n-grams, and every token starts at most ``word_ngrams - 1``
    word n-grams.
    """
    tokens = n_bytes // 2 + 2
    maxn = vocab.maxn if vocab.bucket > 0 else 0
    return tokens * (vocab.word_ngrams + 2 * maxn) + n_bytes * maxn, tokens


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
def line_rows(data, start, end, vocab, rows, hashes, buf):
    """Final rows of the line ``data[start:end]`` (no ``'\\n'`` inside) into ``rows``; returns their count.

    ``rows`` and ``hashes`` hold at least :func:`row_capacity`'s counts for ``end - start``
    bytes, ``buf`` at least ``end - start + 2`` bytes. Label tokens (with the prefix, known
    or not) are dropped, as in prediction.
    """
    nwords = vocab.nwords
    char_ngrams = vocab.maxn > 0 and vocab.bucket > 0
    n = 0
    nw = 0
    i = start
    while True:
        while i < end and _is_sep(data[i]):
            i += 1
        if i >= end:
            break
        s = i
        h = FNV_OFFSET
        while i < end and not _is_sep(data[i]):
            h = _fnv_step(h, data[i])
            i += 1
        ln = i - s
        if _has_prefix(data, s, ln, vocab.prefix):
            continue
        e = _find(vocab.table, vocab.bits, vocab.offsets, vocab.pool, data, s, ln, h)
        if 0 <= e < nwords:
            rows[n] = e
            n += 1
        if char_ngrams and not _is_eos_token(data, s, ln):
            n = subword_rows(data, s, i, vocab.minn, vocab.maxn, vocab.bucket, nwords, vocab.row_keys,
                             vocab.row_bits, vocab.unseen_row, rows, n, buf)
        hashes[nw] = _ngram_hash(h)
        nw += 1
    # the </s> that ends every line
    if vocab.eos_id >= 0:
        rows[n] = vocab.eos_id
        n += 1
    hashes[nw] = _ngram_hash(vocab.eos_hash)
    nw += 1
    if vocab.word_ngrams > 1 and vocab.bucket > 0:
        n = word_ngram_rows(hashes, nw, vocab.word_ngrams, vocab.bucket, nwords, vocab.row_keys,
                            vocab.row_bits, vocab.unseen_row, rows, n)
    return n
