"""What a classifier's model file holds, and the checks that make a loaded model safe to use.

:data:`MEMBERS` is the schema: one line per array, with its dtype, its shape as a function of
the metadata, and its value checks. :func:`parse_meta` checks every metadata field (type,
range, consistency between the settings and the dictionary). :func:`check_arrays` checks what
spans several arrays. After them, every row id the model computes is in range, every weight is
finite, and no size comes from anywhere but the file: :func:`read_model` is all
:meth:`fastembed.Model.load` needs to trust.
"""

import math
import numbers
from types import SimpleNamespace

import numpy as np

from fastembed.errors import ArgumentError, ModelFileError
from fastembed.model_file import Member, load_arrays, short_repr, short_text
from fastembed.quantize import FASTTEXT_KSUB as KSUB
from fastembed.settings import MAX_EPOCH, MAX_LABELS, MAX_THREADS, MAX_WORDS, STORED_NAMES, TrainArgs

__all__ = ["MAX_HISTORY", "MEMBERS", "VERSION", "check_arrays", "history_for_file", "parse_meta",
           "read_model", "stats_for_file"]

# Version 2 adds what continued training and resuming need: the optimizer's accumulators and
# the document frequencies of tf-idf (``continuable``), the number of ``documents`` trained on,
# and in a checkpoint the ``training`` state (epochs done, schedule, random streams).
# Version 3 adds the setting label_weighting (a version-2 file was trained without it).
VERSION = 3
_READS = (1, 2, 3)
_META_KEYS = ("format", "version", "fastembed_version", "args", "dictionary", "train_stats")
_META_KEYS_2 = _META_KEYS + ("documents", "continuable", "training")
_SETTINGS_ADDED = {"deterministic": 2, "label_weighting": 3}  # a file of an older version holds their default
_TRAINING_KEYS = ("epochs_done", "tokens_done", "examples_seen", "loss_sum", "corpus",
                  "shuffle_rng", "thread_rng")
# Added to version 2 later (a checkpoint without them still resumes): the corpus encoding of
# the run, and early stopping's best epoch so far (with patience).
_TRAINING_OPTIONAL = ("out_of_core", "best")
_CORPUS_KEYS = ("lines", "tokens", "checksum")
_RNG_KEYS = ("state", "inc", "has_uint32", "uinteger")
_DICTIONARY_KEYS = ("format", "label_prefix", "word_ngrams", "bucket", "minn", "maxn", "min_count",
                    "min_count_label", "ntokens", "nwords", "nlabels", "eos")
_DICTIONARY_FORMAT = 1  # fastembed.text.dictionary's
_EOS = "</s>"
_MAX_ROW_ID = 2**31 - 1  # input rows are int32
_MAX_NTOKENS = 2**63 - 1
_MAX_STATS = 64
_MAX_TEXT = 1024
# A history entry takes ~210-230 bytes of JSON (8 numbers): 1,000 epochs keep the metadata at about
# a fifth of model_file.MAX_META_BYTES.
MAX_HISTORY = 1000
_MAX_HISTORY_KEYS = 32
_MAX_KEY = 64
_SEPARATORS = np.array([0, 9, 10, 11, 12, 13, 32], dtype=np.uint8)  # never inside a token
_FINITE_CHECK_ELEMENTS = 1 << 22  # the finite check's boolean temporary: 4 MB at most


def _bad(message):
    raise ModelFileError(message)


# -- metadata ----------------------------------------------------------------------------------

def _exact_keys(document, keys, where):
    """``document`` is an object with exactly ``keys``; ``where`` names it ("" at the top)."""
    name = f"metadata field {where}" if where else "metadata"
    if not isinstance(document, dict):
        _bad(f"{name} must be an object, got {type(document).__name__}")
    missing = [k for k in keys if k not in document]
    if missing:
        _bad(f"metadata field {where + '.' if where else ''}{missing[0]} is missing")
    unknown = sorted(set(document) - set(keys))
    if unknown:
        _bad(f"{name} has an unknown key {short_repr(unknown[0])}")


def _integer(value, where, low, high):
    if type(value) is not int or not low <= value <= high:
        _bad(f"metadata field {where} must be an integer between {low} and {high}, got "
             f"{short_repr(value)}")
    return value


def _train_args(values, version):
    added = [name for name, since in _SETTINGS_ADDED.items() if version < since]
    _exact_keys(values, [name for name in STORED_NAMES if name not in added], "args")
    try:
        args = TrainArgs.from_dict(dict(values, **{name: TrainArgs.__dataclass_fields__[name].default
                                                   for name in added}))
    except ArgumentError as exc:
        _bad(f"metadata field args: {short_text(str(exc))}")
    if args.loss == "auto":  # training settles it once the corpus is read
        _bad("metadata field args.loss is 'auto', which a trained model never holds")
    return args


def _check_stats(stats):
    if not isinstance(stats, dict) or len(stats) > _MAX_STATS:
        _bad(f"metadata field train_stats must be an object of at most {_MAX_STATS} entries")
    for key, value in stats.items():
        if key == "history":
            _check_history(value)
        elif len(key) > _MAX_TEXT or not isinstance(value, (int, float, str)) or (
                isinstance(value, str) and len(value) > _MAX_TEXT):
            _bad(f"metadata field train_stats.{short_repr(key)} must be a number or a short string")
    return dict(stats)


def stats_for_file(stats):
    """The ``train_stats`` a model file keeps, beside :func:`_check_stats` that reads them back:
    of the first :data:`_MAX_STATS` entries (the history counted first), those with a short
    string key holding a finite number or a short string, and the history
    (:func:`history_for_file`); so that whatever ``train_stats`` holds, the file loads."""
    kept = {}
    if isinstance(stats.get("history"), list):
        kept["history"] = history_for_file(stats["history"])
    for key, value in stats.items():
        if len(kept) == _MAX_STATS:
            break
        if (key != "history" and isinstance(key, str) and len(key) <= _MAX_TEXT
                and isinstance(value, (int, float, str))
                and (not isinstance(value, float) or math.isfinite(value))
                and (not isinstance(value, str) or len(value) <= _MAX_TEXT)):
            kept[key] = value
    return kept


def history_for_file(history):
    """What a model file keeps of ``train_stats["history"]``: of the last :data:`MAX_HISTORY`
    epochs, those :func:`_check_history` accepts (objects with increasing ``epoch`` numbers),
    in each the entries that are finite numbers (strict JSON has no NaN), so that whatever
    ``train_stats`` holds, the file loads."""
    kept, last = [], 0
    for entry in history[-MAX_HISTORY:]:
        epoch = entry.get("epoch") if isinstance(entry, dict) else None
        if type(epoch) is not int or not last < epoch <= MAX_EPOCH:
            continue
        values = [(k, int(v) if isinstance(v, numbers.Integral) else float(v)) for k, v in entry.items()
                  if isinstance(k, str) and len(k) <= _MAX_KEY and isinstance(v, numbers.Real)
                  and not isinstance(v, (bool, np.bool_)) and math.isfinite(v)]
        kept.append(dict(values[:_MAX_HISTORY_KEYS]))
        last = epoch
    return kept


def _check_history(history):
    """``train_stats.history``: at most MAX_HISTORY objects of at most _MAX_HISTORY_KEYS numbers
    each, with increasing integer ``epoch`` numbers."""
    where = "metadata field train_stats.history"
    if not isinstance(history, list) or len(history) > MAX_HISTORY:
        _bad(f"{where} must be a list of at most {MAX_HISTORY} epochs")
    last = 0
    for entry in history:
        if not isinstance(entry, dict) or len(entry) > _MAX_HISTORY_KEYS:
            _bad(f"{where} must hold objects of at most {_MAX_HISTORY_KEYS} entries")
        for key, value in entry.items():
            if len(key) > _MAX_KEY or type(value) not in (int, float):
                _bad(f"{where}[].{short_repr(key)} must be a number")
        epoch = entry.get("epoch")
        if type(epoch) is not int or not last < epoch <= MAX_EPOCH:
            _bad(f"{where}[].epoch must be an integer above the one before, got {short_repr(epoch)}")
        last = epoch


def parse_meta(meta):
    """Check every field of the metadata; returns ``dims``: settings and sizes for the schema.

    Raises :class:`ModelFileError` naming the first bad field.
    """
    format_version = meta["version"]
    keys = _META_KEYS if format_version == 1 else _META_KEYS_2
    _exact_keys(meta, keys + (("quantization",) if "quantization" in meta else ()), "")
    version = meta["fastembed_version"]
    if not isinstance(version, str) or len(version) > _MAX_TEXT:
        _bad("metadata field fastembed_version must be a short string")
    train_stats = _check_stats(meta["train_stats"])
    args = _train_args(meta["args"], format_version)
    config = meta["dictionary"]
    _exact_keys(config, _DICTIONARY_KEYS, "dictionary")
    # The dictionary repeats settings: they must be the run's, or encoding would differ.
    for key, expected in (("format", _DICTIONARY_FORMAT), ("word_ngrams", args.word_ngrams),
                          ("bucket", args.effective_bucket), ("minn", args.minn),
                          ("maxn", args.maxn), ("min_count", args.min_count),
                          ("min_count_label", args.min_count_label),
                          ("label_prefix", args.label_prefix), ("eos", _EOS)):
        value = config[key]
        if type(value) is not type(expected) or value != expected:
            _bad(f"metadata field dictionary.{key} is {short_repr(value)}, expected {expected!r}")
    bucket = args.effective_bucket
    ntokens = _integer(config["ntokens"], "dictionary.ntokens", 0, _MAX_NTOKENS)
    nwords = _integer(config["nwords"], "dictionary.nwords", 0, min(MAX_WORDS, _MAX_ROW_ID - bucket))
    nlabels = _integer(config["nlabels"], "dictionary.nlabels", 1, MAX_LABELS)
    try:
        prefix = args.label_prefix.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        _bad("metadata field args.label_prefix cannot be encoded")
    settings = [_DICTIONARY_FORMAT, args.word_ngrams, bucket, args.minn, args.maxn, args.min_count,
                args.min_count_label, ntokens]
    quantization = _quantization(meta.get("quantization"), args.dim)
    documents, continuable, training = 0, False, None
    if format_version >= 2:
        documents = _integer(meta["documents"], "documents", 0, _MAX_NTOKENS)
        continuable = meta["continuable"]
        if type(continuable) is not bool:
            _bad(f"metadata field continuable must be true or false, got {short_repr(continuable)}")
        if meta["training"] is not None:
            if not continuable:
                _bad("metadata field training needs continuable")
            training = _training_state(meta["training"], args)
        if continuable and quantization is not None:  # the optimizer sums are of float rows
            _bad("metadata field continuable must be false in a quantized model")
    return SimpleNamespace(
        args=args, config=config, quantization=quantization, dim=args.dim, bucket=bucket, ntokens=ntokens, nwords=nwords,
        nlabels=nlabels, n_out=nlabels - 1 if args.loss == "hs" else nlabels,
        prefix=np.frombuffer(prefix, dtype=np.uint8), settings=np.array(settings, np.int64),
        documents=documents, continuable=continuable, training=training, train_stats=train_stats)


def _training_state(state, args):
    """A checkpoint's schedule and random state, checked: a SimpleNamespace of its fields."""
    optional = tuple(key for key in _TRAINING_OPTIONAL if isinstance(state, dict) and key in state)
    _exact_keys(state, _TRAINING_KEYS + optional, "training")
    out = SimpleNamespace(
        epochs_done=_integer(state["epochs_done"], "training.epochs_done", 1, args.epoch),
        tokens_done=_integer(state["tokens_done"], "training.tokens_done", 0, _MAX_NTOKENS),
        examples_seen=_integer(state["examples_seen"], "training.examples_seen", 0, _MAX_NTOKENS))
    loss_sum = state["loss_sum"]
    if type(loss_sum) not in (int, float) or loss_sum < 0:
        _bad(f"metadata field training.loss_sum must be a number >= 0, got {short_repr(loss_sum)}")
    out.loss_sum = float(loss_sum)
    corpus = state["corpus"]
    _exact_keys(corpus, _CORPUS_KEYS, "training.corpus")
    out.corpus = {key: _integer(corpus[key], f"training.corpus.{key}", 0, _MAX_NTOKENS)
                  for key in _CORPUS_KEYS}
    rng = state["shuffle_rng"]
    _exact_keys(rng, _RNG_KEYS, "training.shuffle_rng")
    out.shuffle_rng = {"state": _integer(rng["state"], "training.shuffle_rng.state", 0, 2**128 - 1),
                       "inc": _integer(rng["inc"], "training.shuffle_rng.inc", 0, 2**128 - 1),
                       "has_uint32": _integer(rng["has_uint32"], "training.shuffle_rng.has_uint32", 0, 1),
                       "uinteger": _integer(rng["uinteger"], "training.shuffle_rng.uinteger", 0,
                                            2**32 - 1)}
    streams = state["thread_rng"]
    if not isinstance(streams, list) or not 1 <= len(streams) <= MAX_THREADS:
        _bad(f"metadata field training.thread_rng must be a list of 1 to {MAX_THREADS} integers")
    out.thread_rng = [_integer(x, "training.thread_rng[]", 0, 2**64 - 1) for x in streams]
    out.out_of_core = state.get("out_of_core")  # None: a checkpoint of an older fastembed
    if out.out_of_core is not None and type(out.out_of_core) is not bool:
        _bad("metadata field training.out_of_core must be true or false")
    out.best = None if state.get("best") is None else _best(state["best"], out.epochs_done)
    return out


def _best(best, epochs_done):
    """Early stopping's best epoch so far: ``{"epoch", "precision_at_1", "loss"}``, checked."""
    _exact_keys(best, ("epoch", "precision_at_1", "loss"), "training.best")
    _integer(best["epoch"], "training.best.epoch", 1, epochs_done)
    for key, high in (("precision_at_1", 1.0), ("loss", math.inf)):
        value = best[key]
        if type(value) not in (int, float) or not 0 <= value <= high:
            _bad(f"metadata field training.best.{key} must be a number between 0 and {high}, "
                 f"got {short_repr(value)}")
    return dict(best)


def _quantization(value, dim):
    """The optional ``quantization`` entry (:mod:`fastembed.model.quantized`): None or
    ``{"dsub": 1..dim, "qnorm": bool, "qout": bool}``."""
    if value is None:
        return None
    _exact_keys(value, ("dsub", "qnorm", "qout"), "quantization")
    _integer(value["dsub"], "quantization.dsub", 1, dim)
    for key in ("qnorm", "qout"):
        if type(value[key]) is not bool:
            _bad(f"metadata field quantization.{key} must be true or false")
    return dict(value)


# -- arrays ------------------------------------------------------------------------------------

def _check_finite(name, array, dims=None):
    flat = array.reshape(-1)
    for start in range(0, flat.size, _FINITE_CHECK_ELEMENTS):
        if not np.isfinite(flat[start:start + _FINITE_CHECK_ELEMENTS]).all():
            _bad(f"{name} holds NaN or infinite values")


def _check_input_matrix(name, array, dims):
    _check_finite(name, array)
    if array[-1].any():
        _bad(f"{name}: its last row, which stands for unseen n-grams, is not zero")


def _check_idf(name, array, dims):
    _check_finite(name, array)
    if array.size and array.min() < 0:
        _bad(f"{name} holds negative weights")


def _check_accumulator(name, array, dims):
    _check_finite(name, array)
    if array.size and array.min() < 0:
        _bad(f"{name} holds negative sums of squares")


def _check_doc_freq(name, array, dims):
    if array.size and (array.min() < 0 or array.max() > dims.documents):
        _bad(f"{name} must be between 0 and documents={dims.documents}")


def _check_bucket_ids(name, array, dims):
    if array.size > dims.bucket or dims.nwords + array.size + 1 > _MAX_ROW_ID:
        _bad(f"{name} holds {array.size} n-gram rows for {dims.bucket} buckets")
    if array.size and (array.min() < 0 or array.max() >= dims.bucket):
        _bad(f"{name} holds a bucket outside [0, {dims.bucket})")
    ordered = np.sort(array)  # np.unique's hash table took 0.64 s for 379k ids, a sort 0.02 s
    if np.any(ordered[1:] == ordered[:-1]):
        _bad(f"{name} holds a bucket twice")


def _check_token_bytes(name, array, dims):
    if np.isin(array, _SEPARATORS).any():
        _bad(f"{name} holds a separator byte (space, tab, newline, ...), which no token holds")


def _offsets_check(pool_size, min_length):
    def check(name, offsets, dims):
        size = getattr(dims, pool_size)
        # the range first: np.diff wraps around, and [0, 2**62, -2**63 + 2**61, 10] would pass
        if offsets[0] != 0 or offsets[-1] != size or offsets.min() < 0 or offsets.max() > size:
            _bad(f"{name} must run from 0 to the size of its bytes")
        if offsets.size > 1 and np.diff(offsets).min() < min_length(dims):
            _bad(f"{name} must increase by at least {min_length(dims)} per entry")
    return check


def _counts_check(setting):
    def check(name, counts, dims):
        low = getattr(dims.args, setting)
        if counts.size == 0:
            return
        if counts.min() < low or counts[0] > dims.ntokens:
            _bad(f"{name} must be between {setting}={low} and ntokens={dims.ntokens}")
        if np.any(counts[:-1] < counts[1:]):
            _bad(f"{name} must be in descending order")
    return check


def _equal_check(attribute):
    def check(name, array, dims):
        if not np.array_equal(array, getattr(dims, attribute)):
            _bad(f"{name} disagrees with the metadata")
    return check


def _n_rows(dims):
    return dims.nwords + dims.n_buckets + 1  # the last row stands for unseen buckets


def _quantized(which, qnorm_only=False):
    """Whether the file holds ``which`` ("input", "output") as codes (and norm codes)."""
    def present(dims):
        q = dims.quantization
        return q is not None and (which == "input" or q["qout"]) and (q["qnorm"] or not qnorm_only)
    return present


def _floats(which):
    quantized = _quantized(which)
    return lambda dims: not quantized(dims)


def _nsubq(dims):
    return -(-dims.dim // dims.quantization["dsub"])


def _quantized_members(which, rows):
    """Codes (one byte a block: any byte indexes the 256 centroids of its block), codebooks."""
    return (
        Member(f"{which}_codes", "|u1", lambda d: (rows(d), _nsubq(d)), present=_quantized(which)),
        Member(f"{which}_centroids", "<f4", lambda d: (d.dim * KSUB,), present=_quantized(which),
               check=_check_finite),
        Member(f"{which}_norm_codes", "|u1", lambda d: (rows(d),), present=_quantized(which, True)),
        Member(f"{which}_norm_centroids", "<f4", lambda d: (KSUB,), present=_quantized(which, True),
               check=_check_finite),
    )


def _earlier_best(dims):
    t = dims.training
    return t is not None and t.best is not None and t.best["epoch"] < t.epochs_done


MEMBERS = (
    Member("bucket_ids", "<i4", lambda d: (d.n_buckets,), binds="n_buckets", check=_check_bucket_ids),
    Member("input_matrix", "<f4", lambda d: (_n_rows(d), d.dim), check=_check_input_matrix,
           present=_floats("input")),
    Member("output_matrix", "<f4", lambda d: (d.n_out, d.dim), check=_check_finite, present=_floats("output")),
    *_quantized_members("input", lambda d: _n_rows(d) - 1),  # the zero row is not stored
    *_quantized_members("output", lambda d: d.n_out),
    Member("idf", "<f4", lambda d: (_n_rows(d),), present=lambda d: d.args.pooling == "tfidf",
           check=_check_idf),
    Member("dict.word_bytes", "|u1", lambda d: (d.n_word_bytes,), binds="n_word_bytes",
           check=_check_token_bytes),
    Member("dict.word_offsets", "<i8", lambda d: (d.nwords + 1,),
           check=_offsets_check("n_word_bytes", lambda d: 1)),
    Member("dict.word_counts", "<i8", lambda d: (d.nwords,), check=_counts_check("min_count")),
    Member("dict.label_bytes", "|u1", lambda d: (d.n_label_bytes,), binds="n_label_bytes",
           check=_check_token_bytes),
    Member("dict.label_offsets", "<i8", lambda d: (d.nlabels + 1,),
           check=_offsets_check("n_label_bytes", lambda d: d.prefix.size)),
    Member("dict.label_counts", "<i8", lambda d: (d.nlabels,), check=_counts_check("min_count_label")),
    Member("dict.label_prefix", "|u1", lambda d: (d.prefix.size,), check=_equal_check("prefix")),
    Member("dict.settings", "<i8", lambda d: (d.settings.size,), check=_equal_check("settings")),
    # version 2, continuable files: the optimizer's accumulators, the tf-idf document counts
    Member("optim.input_sum", "<f4", lambda d: (_n_rows(d), d.dim),
           present=lambda d: d.continuable and d.args.optimizer == "adagrad", check=_check_accumulator),
    Member("optim.input_row_sum", "<f4", lambda d: (_n_rows(d),),
           present=lambda d: d.continuable and d.args.optimizer == "rowwise-adagrad",
           check=_check_accumulator),
    Member("optim.output_sum", "<f4", lambda d: (d.n_out, d.dim),
           present=lambda d: d.continuable and d.args.optimizer == "adagrad", check=_check_accumulator),
    Member("optim.output_row_sum", "<f4", lambda d: (d.n_out,),
           present=lambda d: d.continuable and d.args.optimizer == "rowwise-adagrad",
           check=_check_accumulator),
    Member("doc_freq", "<i8", lambda d: (_n_rows(d),),
           present=lambda d: d.continuable and d.args.pooling == "tfidf", check=_check_doc_freq),
    # a checkpoint of a run with patience whose best epoch is not its last: that epoch's tables
    Member("best.input_matrix", "<f4", lambda d: (_n_rows(d), d.dim), present=_earlier_best,
           check=_check_input_matrix),
    Member("best.output_matrix", "<f4", lambda d: (d.n_out, d.dim), present=_earlier_best,
           check=_check_finite),
)


def _starting_with(pool, offsets, prefix):
    """Which entries of a byte pool start with ``prefix``: bool (n,)."""
    starts = offsets[:-1]
    match = np.diff(offsets) >= prefix.size
    candidates = np.flatnonzero(match)
    for j, byte in enumerate(prefix):
        if candidates.size == 0:
            break
        keep = pool[starts[candidates] + j] == byte
        match[candidates[~keep]] = False
        candidates = candidates[keep]
    return match


def check_arrays(arrays, dims):
    """Checks across arrays: labels are exactly the prefixed tokens, no token twice."""
    from fastembed.text import hashing

    words, word_offsets = arrays["dict.word_bytes"], arrays["dict.word_offsets"]
    labels, label_offsets = arrays["dict.label_bytes"], arrays["dict.label_offsets"]
    if _starting_with(words, word_offsets, dims.prefix).any():
        _bad("dict.word_bytes holds a word that starts with the label prefix")
    if not _starting_with(labels, label_offsets, dims.prefix).all():
        _bad("dict.label_bytes holds a label without the label prefix")
    counts = arrays["dict.word_counts"].sum(dtype=np.float64) + arrays["dict.label_counts"].sum(
        dtype=np.float64)
    if counts > dims.ntokens * (1 + 1e-9):
        _bad(f"the word and label counts add up to more than ntokens={dims.ntokens}")
    pool = hashing.as_readonly_u8(np.concatenate([words, labels]))
    offsets = np.concatenate([word_offsets, label_offsets[1:] + word_offsets[-1]])
    hashes = hashing.hash_entries(pool, offsets)
    table, bits = hashing.build_table(hashes, hashes.size)
    found = hashing.lookup_entries(table, bits, pool, offsets, hashes, pool, offsets)
    if np.any(found != np.arange(found.size)):
        _bad("the dictionary holds a word or label twice")


def read_model(path):
    """Read and check a model file: ``(arrays, dims)``, ``dims.args`` its :class:`TrainArgs`."""
    return load_arrays(path, parse_meta, MEMBERS, check_arrays, versions=_READS)
