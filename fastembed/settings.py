"""Every training setting, declared once: type, range, choices, help and per-preset default.

This module uses the standard library only, so the command line can build ``--help`` without
importing Numba. From :data:`SETTINGS` come:

* :class:`TrainArgs`, the resolved settings of a run (stored in every model file), and its
  validation (:meth:`TrainArgs.validate`, also applied to untrusted model files);
* the ``fastembed train`` options (:mod:`fastembed.cli_options` builds them with ``cli_type``);
* the settings table of ``train_supervised``'s docstring (:func:`docstring_table`) and the
  ``--help`` lines of the presets (:func:`describe_presets`).

The upper bounds are limits no real model comes near; they keep a crafted model file or a
mistyped option from asking for absurd memory or overflowing 64-bit arithmetic.
"""

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass

from fastembed.errors import ArgumentError

__all__ = ["AUTOTUNE_SETTINGS", "DEFAULT_PRESET", "PRESETS", "RUN_SETTINGS", "SETTINGS",
           "UNSUPERVISED_SETTINGS", "Setting", "TrainArgs", "UnsupervisedArgs", "autotune_docstring_table",
           "check_autotune_metric", "describe_presets", "docstring_table", "unsupervised_docstring_table"]

PRESETS = ("fastembed", "fasttext")
DEFAULT_PRESET = "fastembed"

MAX_DIM = 10_000
MAX_WORD_NGRAMS = 32
MAX_CHAR_NGRAM = 64
MAX_BUCKET = 2**31 - 1
MAX_THREADS = 1024
MAX_EPOCH = 1_000_000
MAX_COUNT = 2**31 - 1  # counts are compared, never allocated; this only keeps them int32
MAX_LABELS = 2**24  # extreme-classification models have a few million labels
MAX_WORDS = 2**31 - 2  # with the unseen-bucket row, the input table keeps int32 row ids

# Not a training setting: a limit of the corpus reader (fastembed.text.reader), here so that the
# command line can show it without importing NumPy. One endless line (/dev/zero, a file without
# newlines, a gzip bomb) stops at this length instead of filling memory.
DEFAULT_MAX_LINE_BYTES = 8 << 20
MAX_LINE_BYTES_LIMIT = 1 << 30


@dataclass(frozen=True)
class Setting:
    """One training setting.

    ``default`` is fastText's value, which the ``fasttext`` preset keeps, so that preset trains
    exactly fastText's model; ``presets`` holds the presets that differ from it.
    """

    name: str
    kind: type  # int, float or str
    help: str
    default: object
    presets: dict = dataclasses.field(default_factory=dict)
    low: float = None  # inclusive, unless low_open
    high: float = None  # inclusive
    low_open: bool = False
    choices: tuple = None
    stored: bool = True  # False: a setting of the run only (a path), not written to model files
    flag: str = None  # the command-line option, when not derived from the name

    def default_for(self, preset):
        return self.presets.get(preset, self.default)

    @property
    def preset_dependent(self):
        return bool(self.presets)

    @property
    def option(self):
        """The command-line option: ``--word-ngrams`` for ``word_ngrams``."""
        return self.flag or "--" + self.name.replace("_", "-")

    def check(self, value):
        """Raise :class:`ArgumentError` unless ``value`` is of this setting's type and range."""
        name = self.name
        if value is None and self.default is None:  # an optional path left out
            return
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ArgumentError(f"{name} must be True or False, got {value!r}")
            return
        if self.kind is os.PathLike:
            if not isinstance(value, (str, os.PathLike)):
                raise ArgumentError(f"{name} must be a file path, got {value!r}")
            return
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ArgumentError(f"{name} must be an integer, got {value!r}")
        elif self.kind is float:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ArgumentError(f"{name} must be a number, got {value!r}")
            try:
                finite = math.isfinite(value)
            except OverflowError:  # an int beyond the float range
                finite = False
            if not finite:
                raise ArgumentError(f"{name} must be a finite number, got {value}")
        elif not isinstance(value, str):
            raise ArgumentError(f"{name} must be a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ArgumentError(f"{name} must be one of {', '.join(self.choices)}; got {value!r}")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and value > self.high
        if too_low or too_high:
            raise ArgumentError(f"{name} must be {self.range_text()}, got {value}")

    def range_text(self):
        low = "" if self.low is None else (f"> {self.low}" if self.low_open else f">= {self.low}")
        if self.high is None:
            return low
        if self.low is not None and not self.low_open:
            return f"between {self.low} and {self.high}"
        return f"{low} and <= {self.high}" if low else f"<= {self.high}"


def _s(name, kind, help_, default, presets=None, **bounds):
    return Setting(name, kind, help_, default, dict(presets or {}), **bounds)


SETTINGS = (
    _s("lr", float, "Initial learning rate; it decays linearly to 0 over all tokens of all epochs.",
       0.1, {"fastembed": 0.3}, low=0.0, low_open=True),
    _s("dim", int, "Size of the embedding rows and of the hidden vector.", 100, low=1, high=MAX_DIM),
    _s("epoch", int, "Passes over the corpus.", 5, low=1, high=MAX_EPOCH),
    _s("word_ngrams", int, "Longest word n-gram; n-grams of 2..word_ngrams words are hashed into "
       "bucket rows.", 1, {"fastembed": 2}, low=1, high=MAX_WORD_NGRAMS),
    _s("bucket", int, "Hash buckets for word and character n-grams.", 2_000_000, low=0,
       high=MAX_BUCKET),
    _s("min_count", int, "Words rarer than this are dropped from the dictionary.", 1, low=1,
       high=MAX_COUNT),
    _s("min_count_label", int, "Labels rarer than this are dropped.", 1, low=1, high=MAX_COUNT),
    _s("min_count_ngram", int, "Hashed n-gram rows seen fewer times than this in training are "
       "dropped (they stand for a zero row, as unseen buckets do); 1 keeps all, as fastText.",
       1, {"fastembed": 3}, low=1, high=MAX_COUNT),
    _s("minn", int, "Shortest character n-gram (0: none).", 0, low=0, high=MAX_CHAR_NGRAM),
    _s("maxn", int, "Longest character n-gram (0: none).", 0, low=0, high=MAX_CHAR_NGRAM),
    _s("loss", str, "softmax; ova (one-vs-all sigmoids, multi-label); hs (hierarchical softmax); "
       "auto: ova when a line of the corpus has several labels, else softmax.",
       "softmax", {"fastembed": "auto"}, choices=("softmax", "ova", "hs", "auto")),
    _s("optimizer", str, "Update rule of the embedding rows and the output layer.", "sgd",
       choices=("sgd", "adagrad", "rowwise-adagrad")),
    _s("pooling", str, "How a line's rows become its vector: mean (fastText), sqrt (sum / "
       "sqrt(n)) or tfidf (L2-normalised sublinear tf-idf weights).", "mean",
       {"fastembed": "tfidf"}, choices=("mean", "sqrt", "tfidf")),
    _s("label_weighting", float, "With pooling tfidf: each row's idf is multiplied by 1 + this "
       "x KL(P(label | row) || P(label)) over the training lines, so rows that point at a label "
       "weigh more (0: plain tf-idf).", 0.0, {"fastembed": 2.0}, low=0.0, high=1e6),
    _s("threads", int, "Threads for reading and training (0: every core).", 0, low=0, high=MAX_THREADS),
    _s("seed", int, "Seeds the initialisation and the shuffles; with threads=1 runs are "
       "bit-identical.", 0, low=0, high=2**63 - 1),
    _s("label_prefix", str, "Tokens starting with this are labels.", "__label__"),
    _s("deterministic", bool, "The same model for any thread count: fixed mini-batches whose "
       "updates are applied in a fixed order (see the README for its cost).", False),
    _s("init_model", os.PathLike, "Continue training this model (a Model or its file): its rows "
       "and optimizer state are kept, the corpus's new words, n-grams and labels added, and the "
       "settings not given are the model's.", None, stored=False, flag="--init"),
    _s("checkpoint", os.PathLike, "Write the model with its optimizer and schedule state to this "
       "file at the end of every epoch (atomically).", None, stored=False),
    _s("resume", os.PathLike, "Continue the interrupted run whose checkpoint is this file (same "
       "corpus and settings).", None, stored=False),
)
_BY_NAME = {s.name: s for s in SETTINGS}
_RUN_ONLY = frozenset(s.name for s in SETTINGS if not s.stored)
STORED_NAMES = tuple(s.name for s in SETTINGS if s.stored) + ("preset",)

# Settings of how a run trains that leave the model's definition alone: options of `fastembed
# train` and keywords of train_supervised like the SETTINGS, but not TrainArgs fields, so not
# stored in model files (nor parameters of the scikit-learn estimator).
RUN_SETTINGS = (
    _s("patience", int, "With valid: stop after this many epochs without a better validation "
       "P@1 (ties: lower validation loss) and return the best epoch's model (0: every epoch).",
       0, low=0, high=MAX_EPOCH),
    _s("sample_weight", os.PathLike, "One non-negative weight per line of the corpus (skipped "
       "lines included) or per text: a file of one number per line; in Python also an array. "
       "Multiplies the learning rate of the example (0 leaves it out).", None),
    _s("class_weight", str, "balanced: each label's examples weigh n_examples / (n_labels * "
       "n_label), so every label weighs the same in all; in Python also a dict {label: weight}. "
       "Multiplies the learning rate of the example (and sample_weight).", None,
       choices=("balanced",)),
)
LOSSES = _BY_NAME["loss"].choices
OPTIMIZERS = _BY_NAME["optimizer"].choices
POOLINGS = _BY_NAME["pooling"].choices


class _TrainArgsMethods:
    """Behaviour of :class:`TrainArgs`; its fields come from :data:`SETTINGS`."""

    @classmethod
    def from_preset(cls, preset=None, **given):
        """The settings ``given`` (None: not given), the rest from ``preset``."""
        preset = DEFAULT_PRESET if preset is None else preset
        if preset not in PRESETS:
            raise ArgumentError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
        unknown = sorted(set(given) - set(_BY_NAME))
        if unknown:
            raise ArgumentError(f"unknown training argument: {unknown[0]}")
        values = {s.name: s.default_for(preset) for s in SETTINGS}
        values.update({k: v for k, v in given.items() if v is not None})
        return cls(preset=preset, **values)

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raise :class:`ArgumentError` on the first bad setting."""
        Setting("preset", str, "", DEFAULT_PRESET, choices=PRESETS).check(self.preset)
        for setting in SETTINGS:
            setting.check(getattr(self, setting.name))
        if self.maxn and self.minn > self.maxn:
            raise ArgumentError(f"minn ({self.minn}) must not exceed maxn ({self.maxn})")
        if not self.label_prefix or any(c.isspace() or c == "\0" for c in self.label_prefix):
            raise ArgumentError(
                f"label_prefix must be a non-empty string without whitespace, got {self.label_prefix!r}")
        if "</s>".startswith(self.label_prefix):
            raise ArgumentError(f"label_prefix {self.label_prefix!r} would make '</s>' a label")
        if (self.word_ngrams > 1 or self.maxn > 0) and self.bucket == 0:
            raise ArgumentError("word_ngrams > 1 or maxn > 0 need bucket > 0")

    @property
    def n_threads(self):
        """The thread count to use: ``threads``, or every core when it is 0."""
        return self.threads or os.cpu_count() or 1

    @property
    def effective_bucket(self):
        """Hash buckets actually used: none without n-grams, as fastText does in supervised mode."""
        return self.bucket if (self.word_ngrams > 1 or self.maxn > 0) else 0

    def resolve_loss(self, multi_label):
        """Settle ``loss="auto"`` once the corpus is read: ova if any line has several labels."""
        if self.loss == "auto":
            self.loss = "ova" if multi_label else "softmax"

    def to_dict(self):
        """The stored settings (a model file's ``args``): the run-only paths are left out."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in _RUN_ONLY}

    @classmethod
    def from_dict(cls, values):
        """Build from a stored dict (a model file's): every setting must be present and valid."""
        return cls(**_stored(values, STORED_NAMES))


def _stored(values, names):
    """The settings ``names`` of a stored dict; ArgumentError if one is missing."""
    if not isinstance(values, dict):
        raise ArgumentError(f"settings must be a mapping, got {type(values).__name__}")
    missing = [name for name in names if name not in values]
    if missing:
        raise ArgumentError(f"missing setting: {missing[0]}")
    return {name: values[name] for name in names}


TrainArgs = dataclasses.make_dataclass(
    "TrainArgs",
    [(s.name, s.kind, dataclasses.field(default=s.default)) for s in SETTINGS]
    + [("preset", str, dataclasses.field(default="fasttext"))],
    bases=(_TrainArgsMethods,),
    namespace={"__doc__": "Every setting of a training run (see :data:`SETTINGS`); field names "
                          "follow fastText's Python binding.\n\nBuild it with "
                          ":meth:`from_preset` to get a preset's values for the settings not given.",
               "__module__": __name__},
)


def describe_presets():
    """One line per preset with the settings presets differ in, for ``--help``."""
    keys = [s for s in SETTINGS if s.preset_dependent]
    keys += [_BY_NAME[k] for k in ("dim", "epoch", "optimizer") if _BY_NAME[k] not in keys]
    return [f"{preset}: " + ", ".join(f"{s.option[2:]} {s.default_for(preset)}" for s in keys)
            for preset in PRESETS]


def docstring_table():
    """The numpydoc parameter entries of every setting, for ``train_supervised.__doc__``."""
    return _docstring_entries(SETTINGS + RUN_SETTINGS)


def _docstring_entries(settings):
    lines = []
    for s in settings:
        kind = "{" + ", ".join(f'"{c}"' for c in s.choices) + "}" if s.choices else (
            "str or path" if s.kind is os.PathLike else s.kind.__name__)
        lines.append(f"{s.name} : {kind}, optional")
        if s.preset_dependent:
            default = ", ".join(f"{p}: {s.default_for(p)!r}" for p in PRESETS)
        else:
            default = repr(s.default)
        bounds = f" Range: {s.range_text()}." if s.low is not None or s.high is not None else ""
        lines.append(f"    {s.help}{bounds} Default ({default}).")
    return "\n".join(lines)


# -- autotune (train_supervised's search of settings) ---------------------------------------
# Not settings of a model (a model file stores none of them): how train_supervised searches the
# settings left out, as fastText's autotune. The ``fastembed train`` options come from here.

AUTOTUNE_METRICS = ("precision@1", "f1", "f1:LABEL")
MAX_AUTOTUNE_DURATION = 7 * 24 * 3600.0

AUTOTUNE_SETTINGS = (
    _s("autotune_validation", str, "A labelled corpus (a file; in Python also (texts, labels)) to "
       "search the settings on: the settings not given are searched, and the best setting's model "
       "is returned.", None),
    _s("autotune_duration", float, "Seconds the search may take in all (needs "
       "autotune_validation).", 300.0, low=0.0, low_open=True, high=MAX_AUTOTUNE_DURATION),
    _s("autotune_metric", str, "What the search maximises on the validation corpus: precision@1, "
       "f1 (micro-F1 of the top label) or f1:LABEL (that label's F1).", "precision@1"),
    _s("autotune_refit", bool, "Train the best setting once more on the training and validation "
       "data together, within autotune_duration (its time is reserved; skipped if it would "
       "overrun). False returns the search's model, trained on the training data only.", True),
)


def check_autotune_metric(metric):
    """``metric`` split into (kind, label or None); ArgumentError unless it is one of AUTOTUNE_METRICS."""
    if not isinstance(metric, str):
        raise ArgumentError(f"autotune_metric must be a string, got {metric!r}")
    if metric in ("precision@1", "f1"):
        return metric, None
    if metric.startswith("f1:") and len(metric) > 3 and not any(c.isspace() for c in metric):
        return "f1", metric[3:]
    raise ArgumentError(f"autotune_metric must be one of {', '.join(AUTOTUNE_METRICS)}; got {metric!r}")


def autotune_docstring_table():
    """The numpydoc parameter entries of the autotune arguments."""
    return _docstring_entries(AUTOTUNE_SETTINGS)


# -- word vectors (train_unsupervised) ---------------------------------------------------------
# The settings word vectors share with the classifier are the same Setting entries (one help
# text, one range), with fastText's unsupervised defaults where those differ; the rest are
# declared here once. The ``fastembed skipgram`` / ``cbow`` options come from this tuple.

MAX_WS = 1000
MAX_NEG = 1000


def _unsupervised(name, **changes):
    return dataclasses.replace(_BY_NAME[name], presets={}, **changes)


UNSUPERVISED_SETTINGS = (
    _s("model", str, "skipgram: a word's subwords predict its context words; cbow: the context's "
       "subwords predict the word.", "skipgram", choices=("skipgram", "cbow")),
    _unsupervised("lr", default=0.05),
    _unsupervised("dim"),
    _unsupervised("epoch"),
    _s("ws", int, "Context window: each position uses a random window of 1..ws words on each side.",
       5, low=1, high=MAX_WS),
    _s("neg", int, "Negative samples per target word, drawn from the unigram distribution raised "
       "to the power 0.5 (skipgram, fastText's) or 0.75 (cbow).", 5, low=1, high=MAX_NEG),
    _unsupervised("min_count", default=5),
    _unsupervised("minn", default=3),
    _unsupervised("maxn", default=6),
    _s("t", float, "Subsampling threshold: a word of frequency f is kept with probability "
       "sqrt(t / f) + t / f (0: keep every word).", 1e-4, low=0.0, high=1.0),
    _unsupervised("bucket"),
    _unsupervised("threads"),
    _unsupervised("seed"),
    _unsupervised("label_prefix"),
)
_UNSUPERVISED_BY_NAME = {s.name: s for s in UNSUPERVISED_SETTINGS}


class _UnsupervisedArgsMethods:
    """Behaviour of :class:`UnsupervisedArgs`; its fields come from :data:`UNSUPERVISED_SETTINGS`."""

    @classmethod
    def from_given(cls, **given):
        """The settings ``given`` (None: not given), the rest at their defaults."""
        unknown = sorted(set(given) - set(_UNSUPERVISED_BY_NAME))
        if unknown:
            raise ArgumentError(f"unknown training argument: {unknown[0]}")
        return cls(**{k: v for k, v in given.items() if v is not None})

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raise :class:`ArgumentError` on the first bad setting."""
        for setting in UNSUPERVISED_SETTINGS:
            setting.check(getattr(self, setting.name))
        if self.maxn and self.minn > self.maxn:
            raise ArgumentError(f"minn ({self.minn}) must not exceed maxn ({self.maxn})")
        if self.maxn > 0 and self.bucket == 0:
            raise ArgumentError("maxn > 0 needs bucket > 0")
        if not self.label_prefix or any(c.isspace() or c == "\0" for c in self.label_prefix):
            raise ArgumentError(
                f"label_prefix must be a non-empty string without whitespace, got {self.label_prefix!r}")
        if "</s>".startswith(self.label_prefix):
            raise ArgumentError(f"label_prefix {self.label_prefix!r} would make '</s>' a label")

    n_threads = _TrainArgsMethods.n_threads

    @property
    def effective_bucket(self):
        """Hash buckets actually used: none without character n-grams."""
        return self.bucket if self.maxn > 0 else 0

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Build from a stored dict (a model file's): every setting must be present and valid."""
        return cls(**_stored(values, [s.name for s in UNSUPERVISED_SETTINGS]))


UnsupervisedArgs = dataclasses.make_dataclass(
    "UnsupervisedArgs",
    [(s.name, s.kind, dataclasses.field(default=s.default)) for s in UNSUPERVISED_SETTINGS],
    bases=(_UnsupervisedArgsMethods,),
    namespace={"__doc__": "Every setting of a word-vector training run (see "
                          ":data:`UNSUPERVISED_SETTINGS`); names follow fastText's Python binding.",
               "__module__": __name__},
)


def unsupervised_docstring_table():
    """The numpydoc parameter entries of every word-vector setting."""
    return _docstring_entries(UNSUPERVISED_SETTINGS)
