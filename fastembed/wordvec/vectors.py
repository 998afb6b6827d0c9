"""Trained word vectors: subword-composed look-ups, neighbours, analogies, files.

A word's vector is the mean of its input rows: its own row when it is in the vocabulary, then
one row per character n-gram (fastText's ``get_word_vector``), so a word the corpus never saw
still gets a vector from its n-grams.
"""

import os
import re
import stat
import struct

import numpy as np

from fastembed._version import __version__
from fastembed.errors import ArgumentError, ModelFileError
from fastembed.files import atomic_output
from fastembed.jit import PARALLEL, njit, prange
from fastembed.model_file import load_arrays, save_arrays
from fastembed.settings import UnsupervisedArgs
from fastembed.text import Dictionary, fnv1a_hash
from fastembed.wordvec.corpus import vocabulary_subwords
from fastembed.wordvec.file_schema import KIND, read_word_vectors

__all__ = ["KIND", "WordVectors", "is_word_vector_file", "vec_word", "vec_word_bytes", "write_word2vec"]

_FASTTEXT_MODELS = {"sg": "skipgram", "cbow": "cbow"}
_FASTTEXT_MODEL_FIELD = 4 * 7  # the args' 8th int32 (after dim, ws, epoch, minCount, neg, wordNgrams, loss)
_FASTTEXT_UNSUPERVISED = (1, 2)  # cbow, sg (3 is a classifier)


class WordVectors:
    """Word vectors trained with skipgram or cbow (or read from a fastText ``.bin``).

    Attributes
    ----------
    args : UnsupervisedArgs
    dictionary : fastembed.text.Dictionary
    input_matrix : ndarray of float32, shape (nwords + n_buckets [+ 1], dim)
        Rows ``0..nwords-1`` are the words; row ``nwords + j`` is hash bucket
        ``bucket_ids[j]`` (the dictionary's row map); a last extra row, if present, is zero
        and stands for every bucket without a row (otherwise such buckets are left out of a
        word's mean, as fastText reads a pruned model).
    output_matrix : ndarray of float32, shape (nwords, dim)
    train_stats : dict
    """

    def __init__(self, args, dictionary, input_matrix, output_matrix, train_stats=None):
        self.args = args
        self.dictionary = dictionary
        self.input_matrix = input_matrix
        self.output_matrix = output_matrix
        self.train_stats = dict(train_stats or {})
        self._unit = None

    @property
    def bucket_ids(self):
        return self.dictionary.bucket_ids

    # -- fastText's surface ------------------------------------------------------------------

    @property
    def words(self):
        """The vocabulary, most frequent first (``</s>`` included, as in fastText)."""
        return self.dictionary.words

    @property
    def labels(self):
        return self.dictionary.labels

    @property
    def dim(self):
        return self.input_matrix.shape[1]

    def __contains__(self, word):
        return self.dictionary.get_word_id(word) >= 0

    def get_word_id(self, word):
        """The word's id, -1 if it is not in the vocabulary."""
        return self.dictionary.get_word_id(_word_bytes(word))

    def get_subwords(self, word):
        """``(subwords, ids)`` as fastText's ``get_subwords``: the word itself if known, then
        its character n-grams (``<`` and ``>`` added); ids in fastText's row space
        (word id, or ``nwords + hash % bucket``)."""
        b = _word_bytes(word)
        d = self.dictionary
        wid = d.get_word_id(b)
        names, ids = ([word], [wid]) if wid >= 0 else ([], [])
        if d.maxn > 0 and d.bucket > 0 and b != b"</s>":
            grams = char_ngrams(b, d.minn, d.maxn)
            names += [g.decode("utf-8", "surrogateescape") for g in grams]
            ids += [d.nwords + fnv1a_hash(g) % d.bucket for g in grams]
        return names, np.array(ids, dtype=np.int64)

    def get_word_vector(self, word):
        """The mean of the word's rows; zeros if it has none (no n-gram of a known length)."""
        rows = self.dictionary.word_ids(_word_bytes(word))
        rows = rows[rows < self.input_matrix.shape[0]]  # no zero row: such buckets are left out
        if rows.size == 0:
            return np.zeros(self.dim, dtype=np.float32)
        return self.input_matrix[rows].mean(axis=0, dtype=np.float32)

    def word_vectors(self):
        """Every vocabulary word's vector, (nwords, dim) float32, as :meth:`get_word_vector`."""
        offsets, rows = self._vocabulary_rows()
        vectors = np.empty((self.dictionary.nwords, self.dim), dtype=np.float32)
        _mean_rows(self.input_matrix, offsets, rows, vectors)
        return vectors

    def get_nearest_neighbors(self, word, k=10):
        """The ``k`` vocabulary words most similar (cosine) to ``word``, itself excluded:
        ``[(similarity, word), ...]``, best first, as fastText's."""
        return self._nearest(self.get_word_vector(_check_word(word)), k, {word})

    def get_analogies(self, word_a, word_b, word_c, k=10):
        """The ``k`` words closest to ``a - b + c`` (each unit-normalised first; 3CosAdd as
        fastText's ``get_analogies``: ``("berlin", "germany", "france")`` -> paris), the
        three excluded: ``[(similarity, word), ...]``."""
        query = np.zeros(self.dim, dtype=np.float32)
        for word, sign in ((word_a, 1.0), (word_b, -1.0), (word_c, 1.0)):
            v = self.get_word_vector(_check_word(word))
            query += sign * v / (np.linalg.norm(v) + 1e-8)
        return self._nearest(query, k, {word_a, word_b, word_c})

    # -- files -------------------------------------------------------------------------------

    def save(self, path):
        """Write the model to ``path`` (``.fe``) atomically."""
        dictionary = self.dictionary.to_arrays()
        arrays = {"input_matrix": self.input_matrix, "output_matrix": self.output_matrix,
                  "bucket_ids": dictionary.pop("bucket_ids")}  # the row map, at the top level
        arrays.update({f"dict.{name}": a for name, a in dictionary.items()})
        zero_row = self.input_matrix.shape[0] > self.dictionary.nwords + self.bucket_ids.size
        meta = {"kind": KIND, "fastembed_version": __version__, "args": self.args.to_dict(),
                "dictionary": self.dictionary.config(),
                "missing_buckets": "zero" if zero_row else "skip",
                "train_stats": {k: v for k, v in self.train_stats.items()
                                if isinstance(v, (int, float, str))}}
        save_arrays(path, arrays, meta)

    def save_vec(self, path):
        """The vocabulary's vectors in word2vec text format (``.vec``), atomically."""
        with atomic_output(path) as f:
            write_word2vec(f, self.dictionary.word_bytes, self.word_vectors())

    @classmethod
    def load(cls, path):
        """Read a ``.fe`` word-vector model, or a fastText unsupervised ``.bin``/``.ftz``."""
        try:
            arrays, dims = read_word_vectors(path)
        except ModelFileError:  # asked only now, so that a .fe file does not import fastembed.fasttext
            from fastembed.fasttext.reading import is_fasttext_file

            if not is_fasttext_file(path):
                raise
            return cls.from_fasttext(path)
        dict_arrays = {name[5:]: a for name, a in arrays.items() if name.startswith("dict.")}
        dict_arrays["bucket_ids"] = arrays["bucket_ids"]
        try:
            dictionary = Dictionary.from_arrays(dict_arrays, dims.config)
        except ValueError as exc:  # the schema checks all of it: this is a defect of the schema
            raise ModelFileError(f"{os.fspath(path)}: inconsistent model file ({exc})") from None
        return cls(dims.train_args, dictionary, arrays["input_matrix"], arrays["output_matrix"])

    @classmethod
    def from_fasttext(cls, path):
        """A fastText skipgram/cbow model file, with fastText's word vectors."""
        from fastembed.fasttext_format import WORD, read_fasttext

        ft = read_fasttext(path)
        if ft.args["model"] not in _FASTTEXT_MODELS:
            raise ModelFileError(f"{os.fspath(path)}: a fastText classifier, not word vectors")
        a = ft.args
        try:
            args = UnsupervisedArgs(
                model=_FASTTEXT_MODELS[a["model"]], dim=a["dim"], epoch=a["epoch"], ws=a["ws"],
                neg=a["neg"], min_count=a["minCount"], minn=a["minn"], maxn=a["maxn"], t=a["t"],
                bucket=a["bucket"])
            if ft.pruneidx_size < 0:
                has_rows = a["maxn"] > 0 and ft.input_matrix.shape[0] > ft.nwords
                bucket_ids = np.arange(a["bucket"] if has_rows else 0, dtype=np.int32)
            else:
                pairs = ft.pruneidx[np.argsort(ft.pruneidx[:, 1], kind="stable")]
                bucket_ids = pairs[:, 0].astype(np.int32)
            words = [e for e, t in zip(ft.entries, ft.types) if t == WORD]
            labels = [e for e, t in zip(ft.entries, ft.types) if t != WORD]
            dictionary = Dictionary(
                word_pool=_pool(words), word_offsets=_offsets(words), word_counts=ft.word_counts,
                label_pool=_pool(labels), label_offsets=_offsets(labels),
                label_counts=ft.label_counts, ntokens=ft.ntokens, bucket=a["bucket"],
                minn=a["minn"], maxn=a["maxn"], min_count=max(a["minCount"], 1),
                bucket_ids=bucket_ids)
        except ValueError as exc:  # ArgumentError is one
            raise ModelFileError(f"{os.fspath(path)}: unusable fastText model ({exc})") from None
        model = cls(args, dictionary, np.ascontiguousarray(ft.dense_input()),
                    np.ascontiguousarray(ft.dense_output()))
        model._check(path)
        return model

    # -- internals ---------------------------------------------------------------------------

    def _check(self, path):
        d = self.dictionary
        inp, out = self.input_matrix, self.output_matrix
        base = d.nwords + d.bucket_ids.size
        ok = (inp.ndim == 2 and out.ndim == 2 and inp.dtype == np.float32
              and out.dtype == np.float32 and inp.shape[0] in (base, base + 1)
              and out.shape == (d.nwords, inp.shape[1]))
        if not ok:
            raise ModelFileError(f"{os.fspath(path)}: inconsistent model file (array shapes)")
        self.input_matrix = np.ascontiguousarray(inp)
        self.output_matrix = np.ascontiguousarray(out)

    def _vocabulary_rows(self):
        """CSR rows of every vocabulary word in ``input_matrix``, through the row map."""
        d = self.dictionary
        offsets, rows = vocabulary_subwords(d)  # fastText's ids: nwords + hash % bucket
        hashed = rows >= d.nwords
        if hashed.any():
            order = np.argsort(d.bucket_ids, kind="stable")
            ordered = d.bucket_ids[order]
            buckets = rows[hashed] - d.nwords
            pos = np.minimum(np.searchsorted(ordered, buckets), max(ordered.size - 1, 0))
            found = ordered[pos] == buckets if ordered.size else np.zeros(buckets.size, bool)
            rows = rows.astype(np.int64)
            rows[hashed] = np.where(found, d.nwords + order[pos], d.unseen_row)
        keep = rows < self.input_matrix.shape[0]  # no zero row: such buckets are left out
        if not keep.all():
            word = np.repeat(np.arange(d.nwords), np.diff(offsets))
            counts = np.bincount(word[keep], minlength=d.nwords)
            offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            rows = rows[keep]
        return offsets, rows

    def _nearest(self, query, k, banned):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ArgumentError(f"k must be a positive integer, got {k!r}")
        if self._unit is None:
            v = self.word_vectors()
            norms = np.linalg.norm(v, axis=1, keepdims=True)
            self._unit = v / np.maximum(norms, 1e-8)
        qn = np.linalg.norm(query)
        sims = self._unit @ (query / (qn if qn > 1e-8 else 1.0))
        words = self.words
        order = np.argsort(-sims, kind="stable")[:k + len(banned)]
        out = [(float(sims[i]), words[i]) for i in order if words[i] not in banned]
        return out[:k]


@njit(**PARALLEL)
def _mean_rows(table, offsets, rows, out):
    """``out[w]`` = mean of ``table[rows[offsets[w]:offsets[w + 1]]]`` (zeros if none)."""
    dim = table.shape[1]
    for w in prange(out.shape[0]):
        for j in range(dim):
            out[w, j] = 0.0
        n = offsets[w + 1] - offsets[w]
        for k in range(offsets[w], offsets[w + 1]):
            r = rows[k]
            for j in range(dim):
                out[w, j] += table[r, j]
        if n > 0:
            scale = np.float32(1.0) / np.float32(n)
            for j in range(dim):
                out[w, j] *= scale


def char_ngrams(word: bytes, minn: int, maxn: int):
    """fastText's character n-grams of ``<word>`` (``computeSubwords``), as bytes: n counts
    UTF-8 characters, and the one-character grams ``<`` and ``>`` are left out."""
    w = b"<" + word + b">"
    starts = [i for i in range(len(w)) if (w[i] & 0xC0) != 0x80] + [len(w)]
    grams = []
    for a in range(len(starts) - 1):
        for n in range(minn, maxn + 1):
            if a + n >= len(starts):
                break
            if n == 1 and (a == 0 or a + n == len(starts) - 1):
                continue
            grams.append(w[starts[a]:starts[a + n]])
    return grams


# A backslash that starts ``x`` and two hex digits: the only text vec_word ever escapes besides
# invalid UTF-8, and the only text vec_word_bytes decodes.
_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def vec_word(word: bytes) -> str:
    """``word`` as it is written in a ``.vec`` file: valid UTF-8 text, one-to-one.

    Corpora hold words that are not UTF-8 (20 Newsgroups has Latin-1 bytes), and gensim's
    reader decodes strictly. Each byte of invalid UTF-8 is written ``\\xNN`` (two lowercase hex
    digits), and a backslash followed by ``x`` and two hex digits, which would read as such an
    escape, is written ``\\x5c``: the word ``\\x41`` becomes ``\\x5cx41``, so it cannot meet the
    escape of another word. Every other word, backslashes included, is written as it is, as
    fastText writes it. :func:`vec_word_bytes` reads a word back.
    """
    word = _ESCAPE.sub(lambda m: b"\\x5c" + m.group(0)[1:], word)
    return word.decode("utf-8", "backslashreplace")


def vec_word_bytes(text: str) -> bytes:
    """The word :func:`vec_word` wrote as ``text``: every ``\\xNN`` is the byte ``NN``, read
    left to right; the rest is UTF-8 as written."""
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8", "surrogateescape"))


def write_word2vec(f, word_bytes, matrix):
    """word2vec text format to the binary file ``f``, valid UTF-8 throughout (words through
    :func:`vec_word`)."""
    f.write(f"{len(word_bytes)} {matrix.shape[1]}\n".encode())
    for word, vec in zip(word_bytes, matrix):
        f.write((vec_word(word) + " " + " ".join(f"{v:.5g}" for v in vec.tolist()) + "\n").encode("utf-8"))


def is_word_vector_file(path):
    """True for a ``.fe`` word-vector model and a fastText skipgram/cbow file; False for
    anything else, unreadable files included (the classifier's loader reports those)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        # the guarded reader: it parses the metadata first; any version (the loader checks it)
        load_arrays(path, _peek_kind, (), versions=None)
    except _Kind as kind:
        return kind.args[0] == KIND
    except Exception:  # noqa: BLE001 -- not a fastembed model file: perhaps fastText's
        return _is_fasttext_word_vectors(path)
    return False


class _Kind(Exception):
    """Carries a model file's ``kind`` out of :func:`load_arrays` before any array is read."""


def _peek_kind(meta):
    raise _Kind(meta.get("kind"))


def _is_fasttext_word_vectors(path):
    """True for a fastText skipgram/cbow file; asked only of files that are no fastembed model,
    so that loading a .fe model does not import :mod:`fastembed.fasttext`."""
    from fastembed.fasttext.reading import is_fasttext_file

    try:
        if not is_fasttext_file(path):
            return False
        with open(path, "rb") as f:
            head = f.read(8 + _FASTTEXT_MODEL_FIELD + 4)
    except OSError:  # unreadable: not ours to report here
        return False
    return len(head) == 8 + _FASTTEXT_MODEL_FIELD + 4 and struct.unpack_from(
        "<i", head, 8 + _FASTTEXT_MODEL_FIELD)[0] in _FASTTEXT_UNSUPERVISED


def _word_bytes(word):
    if isinstance(word, bytes):
        return word
    return _check_word(word).encode("utf-8", "surrogateescape")


def _check_word(word):
    if not isinstance(word, (str, bytes)):
        raise ArgumentError(f"a word must be a string, got {type(word).__name__}")
    return word


def _pool(entries):
    return np.frombuffer(b"".join(entries), dtype=np.uint8).copy()


def _offsets(entries):
    return np.concatenate([[0], np.cumsum([len(e) for e in entries])]).astype(np.int64)
