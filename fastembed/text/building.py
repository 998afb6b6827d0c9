"""Building a dictionary from a training corpus, and encoding that corpus with it.

The semantics (fastText's ``Dictionary``) are described in :mod:`fastembed.text.dictionary`.
"""

from __future__ import annotations

import numpy as np

from fastembed.errors import CorpusError

from . import ngram_rows as _rows
from . import scan as _scan
from .dictionary import _EOS_B, Dictionary, _check_settings, _ro
from .encoded import EncodedCorpus
from .reader import read_bytes, source_name

__all__ = ["build_corpus", "dictionary_from_entries"]


def build_corpus(
    source,
    *,
    label_prefix="__label__",
    min_count: int = 1,
    min_count_label: int = 1,
    word_ngrams: int = 1,
    bucket: int = 2_000_000,
    minn: int = 0,
    maxn: int = 0,
    min_count_ngram: int = 1,
    threads: int = 0,
) -> tuple[Dictionary, EncodedCorpus]:
    """Build the dictionary of a training corpus and encode it.

    Two Numba passes: the bytes are scanned once (tokens hashed, counted and
    given a provisional id), the vocabulary is sorted with NumPy, then the
    provisional ids are turned into bags without reading the bytes again.
    Lines without a known label (blank ones included) are skipped, counted in
    ``n_skipped`` and reported once with a :class:`SkippedLinesWarning`.

    Parameters
    ----------
    source : str | PathLike | bytes | uint8 array | Iterable[str | bytes]
        See :func:`read_bytes`.
    label_prefix : str
    min_count, min_count_label : int
    word_ngrams : int  (>= 1)
    bucket : int
        Hash rows after the vocabulary; forced to 0 when ``word_ngrams <= 1``
        and ``maxn == 0``.
    minn, maxn : int
        Character n-gram lengths (off with ``maxn == 0``).
    min_count_ngram : int
        Buckets used fewer times than this by the encoded corpus get no row
        (they read the zero row, as unseen buckets do); 1 keeps them all.
    threads : int
        At most this many threads read a large corpus; 0: every usable core. The result does
        not depend on it.

    Returns
    -------
    (Dictionary, EncodedCorpus)

    Raises
    ------
    FileNotFoundError
        Missing file.
    CorpusError (ValueError)
        Empty corpus, or no line with a label (that reaches ``min_count_label``).
    """
    pre, word_ngrams, bucket, minn, maxn = _check_settings(label_prefix, word_ngrams, bucket, minn, maxn)
    name = source_name(source)
    data = _ro(read_bytes(source))
    scanned = _scan.scan_corpus(data, _ro(np.frombuffer(pre, np.uint8)), _ro(np.frombuffer(_EOS_B, np.uint8)),
                                threads=threads)
    del data  # the bytes of a file are freed here: pass 2 needs only the entries
    d, wid, label = dictionary_from_entries(
        name, scanned[2:], len(scanned[1]), label_prefix=pre, min_count=min_count,
        min_count_label=min_count_label, word_ngrams=word_ngrams, bucket=bucket, minn=minn, maxn=maxn)
    no_map = (np.zeros(0, np.uint64), 0, 0)  # hashed rows, numbered just below
    enc = d._encode_scanned(scanned, wid, label, name, False, no_map)
    if d.bucket > 0:
        d._set_bucket_ids(_rows.corpus_rows(enc.indices, d.nwords, min_count_ngram, d.bucket))
    return d, enc


def dictionary_from_entries(name, entries, n_lines, *, label_prefix, min_count, min_count_label,
                            word_ngrams, bucket, minn, maxn):
    """The dictionary of pass 1's entries, and each entry's word id and label id (-1: none).

    ``entries`` is ``(e_hash, e_count, e_label, e_off, pool)`` as :func:`scan_corpus` returns
    them; ``n_lines`` only feeds the message of an unlabelled corpus.
    """
    _, e_count, e_label, e_off, pool = entries
    pre = label_prefix
    ntokens = int(e_count.sum())
    if ntokens == 0:
        raise CorpusError(f"{name}: empty corpus (no token)")
    is_label = e_label == 1
    wsel = np.flatnonzero(~is_label & (e_count >= max(int(min_count), 1)))
    lsel = np.flatnonzero(is_label & (e_count >= max(int(min_count_label), 1)))
    if len(lsel) == 0:
        if is_label.any():
            raise CorpusError(
                f"{name}: no labelled line: no label reaches min_count_label={min_count_label} "
                f"(label prefix {pre.decode('utf-8', 'replace')!r})"
            )
        raise CorpusError(
            f"{name}: no labelled line ({n_lines} lines, label prefix {pre.decode('utf-8', 'replace')!r})"
        )
    wsel, lsel, tables = ranked_tables(e_count, e_off, pool, wsel, lsel)
    d = Dictionary(
        **tables,
        ntokens=ntokens,
        label_prefix=pre,
        word_ngrams=word_ngrams,
        bucket=bucket,
        minn=minn,
        maxn=maxn,
        min_count=min_count,
        min_count_label=min_count_label,
    )
    nent = len(e_count)
    wid = np.full(nent, -1, dtype=np.int32)
    wid[wsel] = np.arange(len(wsel), dtype=np.int32)
    label = np.full(nent, -1, dtype=np.int32)
    label[lsel] = np.arange(len(lsel), dtype=np.int32)
    return d, wid, label


def ranked_tables(e_count, e_off, pool, wsel, lsel):
    """The selected word and label entries, most frequent first, as :class:`Dictionary` tables.

    Returns ``(wsel, lsel, tables)``: the selections in rank order, and the ``word_*`` /
    ``label_*`` keyword arguments of :class:`Dictionary`. Entries are numbered by first
    appearance, so a stable sort on -count breaks ties by first appearance, as fastText does.
    """
    wsel = wsel[np.argsort(-e_count[wsel], kind="stable")]
    lsel = lsel[np.argsort(-e_count[lsel], kind="stable")]
    rpool = _ro(pool)
    wpool, woff = _scan.gather_entries(rpool, e_off, wsel)
    lpool, loff = _scan.gather_entries(rpool, e_off, lsel)
    return wsel, lsel, dict(word_pool=wpool, word_offsets=woff, word_counts=e_count[wsel],
                            label_pool=lpool, label_offsets=loff, label_counts=e_count[lsel])
