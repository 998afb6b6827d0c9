"""What a word-vector model file holds, checked as the untrusted input it is.

The same container and dictionary members as a classifier's file
(:mod:`fastembed.model.file_schema`); the metadata holds ``kind: "word-vectors"`` and the
:class:`~fastembed.settings.UnsupervisedArgs`, and ``missing_buckets`` says what a hash bucket
without a row reads as: ``"zero"`` (the last input row, zero: models trained here) or
``"skip"`` (left out of the mean: a pruned fastText model, as fastText reads it).
"""

from types import SimpleNamespace

import numpy as np

from fastembed.errors import ArgumentError
from fastembed.model import file_schema as _classifier
from fastembed.model.file_schema import _bad, _exact_keys, _integer, _check_finite
from fastembed.model_file import Member, load_arrays, short_repr, short_text
from fastembed.settings import MAX_WORDS, UNSUPERVISED_SETTINGS, UnsupervisedArgs

__all__ = ["KIND", "MEMBERS", "parse_meta", "read_word_vectors"]

KIND = "word-vectors"
MISSING_BUCKETS = ("zero", "skip")
_META_KEYS = ("format", "version", "kind", "fastembed_version", "args", "dictionary",
              "missing_buckets", "train_stats")
_MAX_ROW_ID = 2**31 - 1


def parse_meta(meta):
    """Check every metadata field; returns ``dims`` for :data:`MEMBERS`."""
    _exact_keys(meta, _META_KEYS, "")
    if meta["kind"] != KIND:
        _bad(f"metadata field kind is {short_repr(meta['kind'])}, expected {KIND!r}")
    if meta["missing_buckets"] not in MISSING_BUCKETS:
        _bad(f"metadata field missing_buckets must be one of {', '.join(MISSING_BUCKETS)}")
    version = meta["fastembed_version"]
    if not isinstance(version, str) or len(version) > 1024:
        _bad("metadata field fastembed_version must be a short string")
    _classifier._check_stats(meta["train_stats"])
    _exact_keys(meta["args"], [s.name for s in UNSUPERVISED_SETTINGS], "args")
    try:
        args = UnsupervisedArgs.from_dict(meta["args"])
    except ArgumentError as exc:
        _bad(f"metadata field args: {short_text(str(exc))}")
    config = meta["dictionary"]
    _exact_keys(config, _classifier._DICTIONARY_KEYS, "dictionary")
    bucket = args.effective_bucket
    for key, expected in (("format", _classifier._DICTIONARY_FORMAT), ("word_ngrams", 1),
                          ("bucket", bucket), ("minn", args.minn), ("maxn", args.maxn),
                          ("min_count_label", 1), ("label_prefix", args.label_prefix),
                          ("eos", _classifier._EOS)):
        value = config[key]
        if type(value) is not type(expected) or value != expected:
            _bad(f"metadata field dictionary.{key} is {short_repr(value)}, expected {expected!r}")
    min_count = _integer(config["min_count"], "dictionary.min_count", 1, 2**31 - 1)
    ntokens = _integer(config["ntokens"], "dictionary.ntokens", 0, _classifier._MAX_NTOKENS)
    nwords = _integer(config["nwords"], "dictionary.nwords", 1, min(MAX_WORDS, _MAX_ROW_ID - bucket))
    nlabels = _integer(config["nlabels"], "dictionary.nlabels", 0, _classifier.MAX_LABELS)
    try:
        prefix = args.label_prefix.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        _bad("metadata field args.label_prefix cannot be encoded")
    settings = [_classifier._DICTIONARY_FORMAT, 1, bucket, args.minn, args.maxn, min_count, 1,
                ntokens]
    # the dictionary members' count checks read their minimum counts from dims.args
    counts = SimpleNamespace(min_count=min_count, min_count_label=1)
    return SimpleNamespace(
        args=counts, train_args=args, config=config, dim=args.dim, bucket=bucket,
        ntokens=ntokens, nwords=nwords, nlabels=nlabels,
        zero_row=int(meta["missing_buckets"] == "zero"), missing=meta["missing_buckets"],
        prefix=np.frombuffer(prefix, dtype=np.uint8), settings=np.array(settings, np.int64))


def _check_input_matrix(name, array, dims):
    _check_finite(name, array)
    if dims.zero_row and array[-1].any():
        _bad(f"{name}: its last row, which stands for buckets without a row, is not zero")


MEMBERS = (
    Member("bucket_ids", "<i4", lambda d: (d.n_buckets,), binds="n_buckets",
           check=_classifier._check_bucket_ids),
    Member("input_matrix", "<f4", lambda d: (d.nwords + d.n_buckets + d.zero_row, d.dim),
           check=_check_input_matrix),
    Member("output_matrix", "<f4", lambda d: (d.nwords, d.dim), check=_check_finite),
) + tuple(m for m in _classifier.MEMBERS if m.name.startswith("dict."))


def read_word_vectors(path):
    """Read and check a word-vector model file: ``(arrays, dims)``."""
    return load_arrays(path, parse_meta, MEMBERS, _classifier.check_arrays)
