"""A raw-text corpus to what word-vector training reads: vocabulary, token stream, subword rows.

One pass over the bytes (:func:`fastembed.text.scan.scan_corpus`, the classifier's pass 1)
counts every token; then

* the vocabulary: words (tokens not starting with the label prefix) seen at least
  ``min_count`` times, most frequent first, ties by first appearance, ``</s>`` (once per
  newline) among them, as fastText's unsupervised dictionary; labels are kept in the
  dictionary (fastText does) but never trained;
* the token stream: every known word of the corpus as its id, line by line (``</s>`` ends
  each line), unknown words and labels left out, as fastText's ``getLine`` drops them;
* the subword rows of every vocabulary word (:class:`Subwords`): the word's own row, then its
  character n-grams (fastText's ``get_subwords``, :meth:`Dictionary.word_ids`), with the
  hashed buckets renumbered to the buckets vocabulary words use.

Why only the used buckets get rows: training reads and writes nothing but the subword rows of
vocabulary words, and all of those are known before the first step. fastText allocates all
``nwords + bucket`` rows (800 MB at the defaults) and the buckets no vocabulary word hashes to
keep their initial values forever (random in the first ``thread`` tenths of the table, zero
after: :func:`fastembed.wordvec.training.init_input`), so an unknown word's n-gram in such a
bucket adds nothing but that. Here those buckets share one zero row instead: the table holds
``nwords + n_used + 1`` rows (on the 14.8M-word benchmark corpus about half of fastText's),
and an unknown word's vector is the mean over its n-grams that training saw, zeros counted for
the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastembed.errors import CorpusError
from fastembed.jit import SERIAL, njit
from fastembed.text import Dictionary
from fastembed.text import encode as _enc
from fastembed.text import scan as _scan
from fastembed.text.building import ranked_tables
from fastembed.text.dictionary import EOS
from fastembed.text.hashing import as_readonly_u8
from fastembed.text.reader import read_bytes, source_name

__all__ = ["Subwords", "TokenStream", "build_vocabulary", "keep_probabilities", "subword_rows",
           "vocabulary_subwords"]

_EOS_B = EOS.encode()
_HASHED_ROWS = (np.zeros(0, np.uint64), 0, 0)  # no row map: n-grams stay nwords + hash % bucket


@dataclass
class TokenStream:
    """The known words of the corpus, line by line.

    ``tokens[offsets[l]:offsets[l + 1]]`` are the word ids of line ``l`` (int32, each in
    ``[0, nwords)``); ``offsets`` is int64[n_lines + 1].
    """

    tokens: np.ndarray
    offsets: np.ndarray

    @property
    def n_lines(self) -> int:
        return self.offsets.size - 1


@dataclass
class Subwords:
    """Input rows of every vocabulary word, CSR, and the buckets that have a row.

    Word ``w`` reads rows ``rows[offsets[w]:offsets[w + 1]]`` (its own row ``w`` first), each
    in ``[0, nwords + bucket_ids.size)``; row ``nwords + j`` is hash bucket ``bucket_ids[j]``
    (sorted, unique). The input table has one more row, zero, for every other bucket.
    """

    offsets: np.ndarray
    rows: np.ndarray
    bucket_ids: np.ndarray


def build_vocabulary(source, *, min_count, label_prefix, bucket, minn, maxn, threads=0):
    """Read ``source`` (see :func:`fastembed.text.read_bytes`) into its vocabulary and tokens,
    on at most ``threads`` threads (0: every usable core).

    Returns ``(Dictionary, TokenStream)``. Raises :class:`CorpusError` for a corpus with no
    word reaching ``min_count``.
    """
    name = source_name(source)
    data = as_readonly_u8(read_bytes(source))
    prefix = label_prefix.encode("utf-8", "surrogateescape")
    scanned = _scan.scan_corpus(data, as_readonly_u8(np.frombuffer(prefix, np.uint8)),
                                as_readonly_u8(np.frombuffer(_EOS_B, np.uint8)), threads=threads)
    del data  # the bytes are not needed after the scan
    tok, line_end, _, e_count, e_label, e_off, pool = scanned
    ntokens = int(e_count.sum())
    if ntokens == 0:
        raise CorpusError(f"{name}: empty corpus (no token)")
    is_label = e_label == 1
    wsel = np.flatnonzero(~is_label & (e_count >= min_count))
    if wsel.size == 0:
        raise CorpusError(f"{name}: no word occurs min_count={min_count} times "
                          f"({int((~is_label).sum())} distinct words); lower min_count")
    lsel = np.flatnonzero(is_label)
    wsel, lsel, tables = ranked_tables(e_count, e_off, pool, wsel, lsel)
    dictionary = Dictionary(
        **tables, ntokens=ntokens, label_prefix=prefix, word_ngrams=1, bucket=bucket if maxn > 0 else 0,
        minn=minn, maxn=maxn, min_count=min_count, min_count_label=1)
    word_of_entry = np.full(e_count.size, -1, dtype=np.int32)
    word_of_entry[wsel] = np.arange(wsel.size, dtype=np.int32)
    tokens, offsets = _known_tokens(tok, line_end, word_of_entry)
    return dictionary, TokenStream(tokens, offsets)


@njit(**SERIAL)
def _known_tokens(tok, line_end, word_of_entry):
    """The word ids of the known tokens, and the line offsets into them."""
    n = 0
    for i in range(tok.size):
        if word_of_entry[tok[i]] >= 0:
            n += 1
    tokens = np.empty(n, dtype=np.int32)
    offsets = np.empty(line_end.size + 1, dtype=np.int64)
    offsets[0] = 0
    k = 0
    i = 0
    for line in range(line_end.size):
        while i < line_end[line]:
            w = word_of_entry[tok[i]]
            if w >= 0:
                tokens[k] = w
                k += 1
            i += 1
        offsets[line + 1] = k
    return tokens, offsets


def vocabulary_subwords(dictionary: Dictionary):
    """``(offsets int64[nwords + 1], ids int32[...])``: every vocabulary word's ids in fastText's
    row space (its id, then its n-grams' ``nwords + hash % bucket``: ``get_subwords``), CSR."""
    words = dictionary.word_bytes
    pool = as_readonly_u8(np.frombuffer(b"".join(words), dtype=np.uint8))
    woff = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum([len(w) for w in words], out=woff[1:])
    is_eos = np.array([w == _EOS_B for w in words], dtype=np.uint8)
    return _enc.entry_rows(pool, woff, np.arange(len(words), dtype=np.int32),
                           np.ones(len(words), dtype=np.uint8), is_eos, dictionary.nwords,
                           dictionary.bucket, dictionary.minn, dictionary.maxn, *_HASHED_ROWS)


def subword_rows(dictionary: Dictionary):
    """The rows of every vocabulary word, and the dictionary holding their row map.

    The buckets vocabulary words use get rows ``nwords + j`` in increasing bucket order
    (``bucket_ids`` sorted); returns ``(Subwords, Dictionary)``, the dictionary a copy of
    ``dictionary`` whose :meth:`~Dictionary.word_ids` map to the same rows.
    """
    nwords = dictionary.nwords
    offsets, rows = vocabulary_subwords(dictionary)
    hashed = rows >= nwords
    bucket_ids = np.unique(rows[hashed] - nwords).astype(np.int32)
    rows = rows.copy()
    rows[hashed] = nwords + np.searchsorted(bucket_ids, rows[hashed] - nwords).astype(np.int32)
    mapped = Dictionary.from_arrays(dict(dictionary.to_arrays(), bucket_ids=bucket_ids))
    return Subwords(offsets, rows, bucket_ids), mapped


def keep_probabilities(word_counts, ntokens, t):
    """fastText's subsampling: word ``w`` of frequency ``f = count / ntokens`` is kept with
    probability ``sqrt(t / f) + t / f`` (``dictionary.cc`` ``initTableDiscard``; a value
    above 1 keeps it always). ``t = 0`` keeps every word (fastText would drop nearly all)."""
    if t == 0:
        return np.ones(len(word_counts), dtype=np.float32)
    ratio = t / (np.asarray(word_counts, dtype=np.float64) / float(ntokens))
    return (np.sqrt(ratio) + ratio).astype(np.float32)
