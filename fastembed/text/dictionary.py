"""Dictionary and encoded corpus: fastText's supervised input pipeline on bytes.

The heavy work is in :mod:`fastembed.text.scan` and :mod:`fastembed.text.encode` (Numba); this module holds the
thin Python layer: validation, the vocabulary sort (NumPy), persistence and the
public classes.

Semantics (fastText ``Dictionary``, see ``src/dictionary.cc``)
-------------------------------------------------------------
* Tokens are split on ``' ' '\\t' '\\v' '\\f' '\\r' '\\0'``; ``'\\n'`` ends a line
  and is the token ``</s>`` (so CRLF works: ``'\\r'`` is a separator).
* A token starting with ``label_prefix`` is a label, wherever it stands.
* Counts: every token of every line (labelled or not) and ``</s>`` once per
  newline.  Words with count ``>= min_count`` and labels with count
  ``>= min_count_label`` are kept, each group ordered by decreasing count,
  ties by first appearance (fastText's ``std::sort`` leaves tie order
  unspecified).
* A bag (fastText ``getLine``): the rows of every word token (its id, then its
  character n-grams when ``maxn > 0``; an unknown word gives only its
  character n-grams; ``</s>`` never has character n-grams), then the word
  n-grams of 2..``word_ngrams`` consecutive word tokens (unknown words and
  ``</s>`` included, labels not), in bucket ``hash % bucket``.
* Rows (the n-gram row map, :mod:`fastembed.text.ngram_rows`, fastText's
  ``pruneidx_``): word ``i`` is row ``i``; the ``j``-th bucket the training
  corpus uses (by first appearance, after ``min_count_ngram``) is row
  ``nwords + j``; every other bucket reads row ``nwords + len(bucket_ids)``,
  the zero row.  :func:`build_corpus` and :meth:`Dictionary.encode` both emit
  these final rows.
* With ``word_ngrams <= 1`` and ``maxn == 0`` the bucket is forced to 0, as
  fastText does (``args.cc``; the Python binding's ``_build_args``).

Deliberate differences from fastText (documented, none affects real corpora
in fastText format):

* A final line without ``'\\n'`` still gets ``</s>`` appended to its bag (and to
  its ``ntokens``), like fastText's ``predict``, which appends ``"\\n"``; it is
  not counted in the dictionary, exactly as fastText's ``readFromFile``.
* A literal ``</s>`` token inside a line is the word ``</s>`` (same id and
  count as the end of line) but does not split the line: fastText's
  ``getLine`` would end the example there.
* fastText prunes the vocabulary while reading once it holds more than 22.5 M
  distinct tokens; this implementation never does.
* ``min_count``/``min_count_label`` below 1 act as 1.

Skipped lines are reported as :mod:`fastembed.text.encoded` describes.
"""

from __future__ import annotations

import warnings

import numpy as np

from fastembed.errors import ArgumentError, CorpusError
from fastembed.settings import MAX_CHAR_NGRAM, MAX_WORD_NGRAMS

from . import encode as _enc
from . import hashing as _hash
from . import ngram_rows as _rows
from . import scan as _scan
from .encoded import EncodedCorpus, SkippedLinesWarning
from .line import LineVocab
from .reader import read_bytes, source_name

__all__ = [
    "EOS",
    "CorpusError",
    "Dictionary",
    "fnv1a_hash",
]

EOS = "</s>"
_EOS_B = b"</s>"
_EOS_HASH = 0xD79C9359  # fnv1a_hash(b"</s>"), checked by the tests
_FORMAT = 1
_SETTINGS = ("format", "word_ngrams", "bucket", "minn", "maxn", "min_count", "min_count_label", "ntokens")
_I32_MAX = 2**31 - 1


def _to_bytes(s) -> bytes:
    if isinstance(s, str):
        return s.encode("utf-8", "surrogateescape")
    return bytes(s)


def _ro(a) -> np.ndarray:
    return _hash.as_readonly_u8(a)


def fnv1a_hash(b) -> int:
    """fastText's 32-bit FNV-1a hash of ``b`` (``bytes``, or ``str`` as UTF-8).

    Each byte is taken as a *signed* char (``h ^= uint32(int8(c))``), as every
    released fastText model does; for ASCII this is plain FNV-1a.

    Returns
    -------
    int
        The hash as an unsigned 32-bit value (``0 <= h < 2**32``).
    """
    a = _ro(np.frombuffer(_to_bytes(b), dtype=np.uint8))
    return int(_hash.fnv1a_range(a, 0, a.size))


def _check_settings(label_prefix, word_ngrams, bucket, minn, maxn):
    pre = _to_bytes(label_prefix)
    if not pre:
        raise ArgumentError("label_prefix must not be empty")
    if _EOS_B.startswith(pre):
        raise ArgumentError(f"label_prefix {label_prefix!r} would make {EOS!r} a label")
    for name, v in (("word_ngrams", word_ngrams), ("bucket", bucket), ("minn", minn), ("maxn", maxn)):
        if int(v) != v:
            raise ArgumentError(f"{name} must be an integer, got {v!r}")
    if not 1 <= word_ngrams <= MAX_WORD_NGRAMS:  # beyond, i + word_ngrams could overflow int64
        raise ArgumentError(f"word_ngrams must be between 1 and {MAX_WORD_NGRAMS}, got {word_ngrams}")
    if not (0 <= minn <= MAX_CHAR_NGRAM and 0 <= maxn <= MAX_CHAR_NGRAM):
        raise ArgumentError(
            f"minn and maxn must be between 0 and {MAX_CHAR_NGRAM}, got minn={minn}, maxn={maxn}")
    if bucket < 0 or bucket > _I32_MAX:
        raise ArgumentError(f"bucket must be in [0, 2**31 - 1], got {bucket}")
    if word_ngrams <= 1 and maxn == 0:
        bucket = 0  # fastText: no n-grams, nothing hashed
    elif bucket == 0:
        raise ArgumentError(
            f"bucket must be > 0 with word_ngrams={word_ngrams}, maxn={maxn} (fastText would divide by zero)"
        )
    return pre, int(word_ngrams), int(bucket), int(minn), int(maxn)


class Dictionary:
    """Words and labels of a training corpus, with fastText's ids and hashing.

    Build one with :func:`build_corpus`; restore one with :meth:`from_arrays`.

    Attributes
    ----------
    nwords, nlabels : int
    ntokens : int
        Tokens of the training corpus as fastText counts them (every token,
        ``</s>`` once per newline).
    word_counts, label_counts : int64[nwords], int64[nlabels]
        Non-increasing.
    label_prefix : str
    word_ngrams, bucket, minn, maxn, min_count, min_count_label : int
    bucket_ids : int32[n_used]
        The bucket of each n-gram row: row ``nwords + j`` stands for bucket
        ``bucket_ids[j]``.
    n_rows : int
        ``nwords + len(bucket_ids) + 1``: the height of the input table.
    unseen_row : int
        ``nwords + len(bucket_ids)``: the zero row every other bucket reads.
    words, labels : list[str]
        Decoded from UTF-8 with ``errors="surrogateescape"`` (lossless:
        ``w.encode("utf-8", "surrogateescape")`` gives the bytes back); labels
        keep their prefix, as fastText's ``model.labels``.
    word_bytes, label_bytes : list[bytes]
        The raw bytes.
    """

    def __init__(
        self,
        *,
        word_pool: np.ndarray,
        word_offsets: np.ndarray,
        word_counts: np.ndarray,
        label_pool: np.ndarray,
        label_offsets: np.ndarray,
        label_counts: np.ndarray,
        ntokens: int,
        label_prefix="__label__",
        word_ngrams: int = 1,
        bucket: int = 2_000_000,
        minn: int = 0,
        maxn: int = 0,
        min_count: int = 1,
        min_count_label: int = 1,
        bucket_ids=None,
    ):
        pre, self.word_ngrams, self.bucket, self.minn, self.maxn = _check_settings(
            label_prefix, word_ngrams, bucket, minn, maxn
        )
        self._prefix_b = pre
        self.label_prefix = pre.decode("utf-8", "surrogateescape")
        self.min_count = int(min_count)
        self.min_count_label = int(min_count_label)
        self.ntokens = int(ntokens)
        self._wpool = _ro(word_pool)
        self._woff = np.ascontiguousarray(word_offsets, dtype=np.int64)
        self._lpool = _ro(label_pool)
        self._loff = np.ascontiguousarray(label_offsets, dtype=np.int64)
        self.word_counts = np.ascontiguousarray(word_counts, dtype=np.int64)
        self.label_counts = np.ascontiguousarray(label_counts, dtype=np.int64)
        self.nwords = len(self._woff) - 1
        self.nlabels = len(self._loff) - 1
        if len(self.word_counts) != self.nwords or len(self.label_counts) != self.nlabels:
            raise ValueError("Dictionary: counts and offsets disagree")
        for off, pool in ((self._woff, self._wpool), (self._loff, self._lpool)):
            if off[0] != 0 or off[-1] != pool.size or np.any(np.diff(off) <= 0):
                raise ValueError("Dictionary: malformed offsets")
        if self.nwords + self.bucket > _I32_MAX:
            raise ValueError("Dictionary: nwords + bucket exceeds 2**31 - 1")
        self._lookup = None
        self._line_vocab = None
        self._words = None
        self._labels = None
        self._set_bucket_ids(np.zeros(0, np.int32) if bucket_ids is None else bucket_ids)

    def _set_bucket_ids(self, bucket_ids):
        """Hold the n-gram row map: ``bucket_ids`` and its look-up table, built in O(len)."""
        ids = np.asarray(bucket_ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError("Dictionary: bucket_ids must be a 1-D integer array")
        if ids.size and (ids.min() < 0 or ids.max() >= self.bucket):
            raise ValueError(f"Dictionary: bucket_ids outside [0, bucket={self.bucket})")
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        keys, bits, status = _rows.build_row_table(ids, self.bucket)
        if status != _rows.TABLE_OK:
            raise ValueError("Dictionary: bucket_ids holds a bucket twice")
        self.bucket_ids = ids
        self._row_map = (keys, int(bits), self.nwords + ids.size)
        self._line_vocab = None

    # ------------------------------------------------------------------ views
    @property
    def n_rows(self) -> int:
        return self.nwords + self.bucket_ids.size + 1

    @property
    def unseen_row(self) -> int:
        return self.nwords + self.bucket_ids.size

    @staticmethod
    def _split(pool, off) -> list[bytes]:
        buf = pool.tobytes()
        o = off.tolist()
        return [buf[o[i] : o[i + 1]] for i in range(len(o) - 1)]

    @property
    def word_bytes(self) -> list[bytes]:
        return self._split(self._wpool, self._woff)

    @property
    def label_bytes(self) -> list[bytes]:
        return self._split(self._lpool, self._loff)

    @property
    def words(self) -> list[str]:
        if self._words is None:
            self._words = [w.decode("utf-8", "surrogateescape") for w in self.word_bytes]
        return self._words

    @property
    def labels(self) -> list[str]:
        if self._labels is None:
            self._labels = [w.decode("utf-8", "surrogateescape") for w in self.label_bytes]
        return self._labels

    def __repr__(self) -> str:
        return (
            f"Dictionary(nwords={self.nwords}, nlabels={self.nlabels}, ntokens={self.ntokens}, "
            f"word_ngrams={self.word_ngrams}, bucket={self.bucket}, minn={self.minn}, maxn={self.maxn})"
        )

    # ---------------------------------------------------------------- lookups
    def _table(self):
        if self._lookup is None:
            pool = _ro(np.concatenate([self._wpool, self._lpool]))
            off = np.concatenate([self._woff, self._loff[1:] + self._woff[-1]])
            table, bits = _hash.build_table(_hash.hash_entries(pool, off), len(off) - 1)
            self._lookup = (table, int(bits), pool, off)
        return self._lookup

    def line_vocab(self) -> LineVocab:
        """The dictionary as the line kernels read it (:mod:`fastembed.text.line`); built once."""
        if self._line_vocab is None:
            table, bits, pool, off = self._table()
            row_keys, row_bits, unseen_row = self._row_map
            self._line_vocab = LineVocab(
                prefix=_ro(np.frombuffer(self._prefix_b, np.uint8)), table=table, bits=bits, pool=pool,
                offsets=off, row_keys=row_keys, row_bits=row_bits, unseen_row=unseen_row,
                nwords=self.nwords, bucket=self.bucket, minn=self.minn, maxn=self.maxn,
                word_ngrams=self.word_ngrams, eos_id=self._eos_id(), eos_hash=_EOS_HASH)
        return self._line_vocab

    def _eos_id(self) -> int:
        """Word id of ``</s>``, -1 if it is not a word (found without loading a kernel)."""
        for w in np.flatnonzero(np.diff(self._woff) == len(_EOS_B)).tolist():
            if self._wpool[self._woff[w] : self._woff[w + 1]].tobytes() == _EOS_B:
                return w
        return -1

    def _find(self, token) -> int:
        b = _to_bytes(token)
        q = _ro(np.frombuffer(b, dtype=np.uint8))
        qh = _hash.hash_entries(q, np.array([0, len(b)], dtype=np.int64))
        table, bits, pool, off = self._table()
        return int(_hash.lookup_entries(table, bits, pool, off, qh, q, np.array([0, len(b)], dtype=np.int64))[0])

    def get_word_id(self, word) -> int:
        """Id of ``word`` (``str`` or ``bytes``), -1 if it is not a known word."""
        i = self._find(word)
        return i if 0 <= i < self.nwords else -1

    def get_label_id(self, label) -> int:
        """Id (``0..nlabels-1``) of ``label`` (with its prefix), -1 if unknown."""
        i = self._find(label)
        return i - self.nwords if i >= self.nwords else -1

    def word_ids(self, word) -> np.ndarray:
        """Input rows of ``word`` (fastText's ``get_subwords`` ids, through the row map).

        Its id when known, then (``maxn > 0``, not ``</s>``) the rows of its
        character n-grams' buckets.  Returns ``int32[k]``.
        """
        b = _to_bytes(word)
        wid = self.get_word_id(b)
        _, rows = _enc.entry_rows(
            _ro(np.frombuffer(b, dtype=np.uint8)),
            np.array([0, len(b)], dtype=np.int64),
            np.array([wid], dtype=np.int32),
            np.ones(1, dtype=np.uint8),
            np.array([b == _EOS_B], dtype=np.uint8),
            self.nwords,
            self.bucket,
            self.minn,
            self.maxn,
            *self._row_map,
        )
        return rows

    # --------------------------------------------------------------- encoding
    def _entry_tables(self, e_hash, e_label, e_off, pool, wid, row_map):
        """What pass 2 needs of the scanned entries: ``(rows_off, rows, ehash)`` (see encode_lines)."""
        pool = _ro(pool)
        is_word = (e_label == 0).astype(np.uint8)
        is_eos = np.zeros(len(e_label), dtype=np.uint8)
        cand = np.flatnonzero(np.diff(e_off) == len(_EOS_B))
        if len(cand):
            m = (pool[e_off[cand][:, None] + np.arange(len(_EOS_B))] == np.frombuffer(_EOS_B, np.uint8)).all(1)
            is_eos[cand[m]] = 1
        rows_off, rows = _enc.entry_rows(
            pool, e_off, wid, is_word, is_eos, self.nwords, self.bucket, self.minn, self.maxn, *row_map
        )
        return rows_off, rows, e_hash.astype(np.uint32).view(np.int32)

    def _encode_scanned(self, scanned, wid, label, name, keep_all, row_map, stacklevel=3) -> EncodedCorpus:
        """Pass 2 over pass-1 output, given each entry's word id / label id and the row map."""
        tok, line_end, e_hash, _e_count, e_label, e_off, pool = scanned
        rows_off, rows, ehash = self._entry_tables(e_hash, e_label, e_off, pool, wid, row_map)
        ind, off, lab, loff, ntok, nskip, kidx = _enc.encode_lines(
            tok, line_end, e_label, label, ehash, rows_off, rows,
            self.nwords, self.bucket, self.word_ngrams, row_map, int(keep_all),
        )  # fmt: skip
        kept = np.flatnonzero(kidx >= 0) if nskip else None
        del kidx
        enc = EncodedCorpus(ind, off, lab, loff, ntok, int(nskip), kept)
        if enc.n_skipped:
            warnings.warn(
                f"{name}: skipped {enc.n_skipped} of {len(line_end)} lines (blank or without a known label)",
                SkippedLinesWarning,
                stacklevel=stacklevel,
            )
        return enc

    def encode(self, source, *, keep_unlabelled: bool = False, threads: int = 0) -> EncodedCorpus:
        """Encode a corpus with this dictionary (test / predict).

        Parameters
        ----------
        source : see :func:`read_bytes`.
        keep_unlabelled : bool
            ``False``: lines without a label known to the dictionary (blank
            ones included) are skipped, counted in ``n_skipped`` and warned
            about once.  ``True``: one bag per input line, every line kept
            (blank ones too), labels unknown to the dictionary dropped -- the
            predict mode; a final line without ``"\\n"`` counts and gets
            ``</s>``.
        threads : int
            At most this many threads read a large corpus; 0: every usable core.

        Returns
        -------
        EncodedCorpus
        """
        return self._encode(source, keep_unlabelled, self._row_map, threads)

    def _encode(self, source, keep_unlabelled, row_map, threads=0) -> EncodedCorpus:
        """:meth:`encode` through ``row_map`` (an empty key table: rows in the hashed space)."""
        name = source_name(source)
        data = _ro(read_bytes(source))
        scanned = _scan.scan_corpus(data, _ro(np.frombuffer(self._prefix_b, np.uint8)), _ro(np.frombuffer(_EOS_B, np.uint8)),
                                    threads=threads)
        del data
        _, _, e_hash, _, e_label, e_off, pool = scanned
        table, bits, dpool, doff = self._table()
        did = _hash.lookup_entries(table, bits, dpool, doff, e_hash, _ro(pool), e_off)
        is_label = e_label == 1
        wid = np.where(~is_label & (did >= 0) & (did < self.nwords), did, -1).astype(np.int32)
        label = np.where(is_label & (did >= self.nwords), did - self.nwords, -1).astype(np.int32)
        return self._encode_scanned(scanned, wid, label, name, keep_unlabelled, row_map, stacklevel=4)

    # ------------------------------------------------------------ persistence
    def config(self) -> dict:
        """Scalar settings, JSON-able (``label_prefix`` is a ``str``)."""
        return {
            "format": _FORMAT,
            "label_prefix": self.label_prefix,
            "word_ngrams": self.word_ngrams,
            "bucket": self.bucket,
            "minn": self.minn,
            "maxn": self.maxn,
            "min_count": self.min_count,
            "min_count_label": self.min_count_label,
            "ntokens": self.ntokens,
            "nwords": self.nwords,
            "nlabels": self.nlabels,
            "eos": EOS,
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to rebuild the dictionary, as plain arrays.

        Keys: ``word_bytes`` uint8, ``word_offsets`` int64[nwords + 1],
        ``word_counts`` int64[nwords], ``label_bytes``, ``label_offsets``,
        ``label_counts`` (likewise), ``label_prefix`` uint8, ``settings``
        int64 (format, word_ngrams, bucket, minn, maxn, min_count,
        min_count_label, ntokens) and ``bucket_ids`` int32[n_used] (the row
        map; its look-up table is rebuilt on load).  No object arrays:
        ``np.savez`` / ``np.load(allow_pickle=False)`` round-trip them.
        """
        return {
            "word_bytes": np.array(self._wpool, dtype=np.uint8),
            "word_offsets": self._woff.copy(),
            "word_counts": self.word_counts.copy(),
            "label_bytes": np.array(self._lpool, dtype=np.uint8),
            "label_offsets": self._loff.copy(),
            "label_counts": self.label_counts.copy(),
            "label_prefix": np.frombuffer(self._prefix_b, dtype=np.uint8).copy(),
            "settings": np.array([getattr(self, k) if k != "format" else _FORMAT for k in _SETTINGS], dtype=np.int64),
            "bucket_ids": self.bucket_ids.copy(),
        }

    @classmethod
    def from_arrays(cls, arrays, config: dict | None = None) -> Dictionary:
        """Rebuild a dictionary from :meth:`to_arrays` output.

        ``arrays`` may be any mapping (e.g. an ``np.load`` result).  The scalar
        settings are read from ``arrays["settings"]``/``arrays["label_prefix"]``,
        or from ``config`` (a :meth:`config` dict) when given, in which case
        those two arrays may be absent.  Without ``bucket_ids`` every bucket
        reads the zero row.
        """
        if config is not None:
            if int(config.get("format", _FORMAT)) != _FORMAT:
                raise ValueError(f"Dictionary: unsupported format {config.get('format')!r}")
            st = {k: int(config[k]) for k in _SETTINGS if k != "format"}
            prefix = config["label_prefix"]
        else:
            s = np.asarray(arrays["settings"], dtype=np.int64)
            if len(s) != len(_SETTINGS) or s[0] != _FORMAT:
                raise ValueError("Dictionary: unsupported settings array")
            st = dict(zip(_SETTINGS[1:], (int(x) for x in s[1:])))
            prefix = np.asarray(arrays["label_prefix"], dtype=np.uint8).tobytes()
        return cls(
            word_pool=np.asarray(arrays["word_bytes"], dtype=np.uint8),
            word_offsets=np.asarray(arrays["word_offsets"], dtype=np.int64),
            word_counts=np.asarray(arrays["word_counts"], dtype=np.int64),
            label_pool=np.asarray(arrays["label_bytes"], dtype=np.uint8),
            label_offsets=np.asarray(arrays["label_offsets"], dtype=np.int64),
            label_counts=np.asarray(arrays["label_counts"], dtype=np.int64),
            label_prefix=prefix,
            bucket_ids=arrays["bucket_ids"] if "bucket_ids" in arrays else None,
            **st,
        )
