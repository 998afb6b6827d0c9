"""Training arguments: one dataclass, checked once, stored in every model file."""

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass

LOSSES = ("softmax", "ova", "hs", "auto")  # auto: ova on a multi-label corpus, else softmax
OPTIMIZERS = ("sgd", "adagrad", "rowwise-adagrad")
POOLINGS = ("mean", "sqrt", "tfidf")


class ArgumentError(ValueError):
    """A training argument is out of range; the message names it."""


# Settings a preset fills in where the caller gives none. TrainArgs' own field defaults are
# fastText's supervised defaults, so the "fasttext" preset changes nothing: it trains exactly
# fastText's model (mean pooling, SGD, softmax, unigrams) and keeps side-by-side comparisons
# with fastText meaningful. "fastembed" is what a user who passes only a corpus gets.
PRESETS = {
    "fastembed": {"pooling": "tfidf", "word_ngrams": 2, "lr": 0.3, "min_count_ngram": 3,
                  "loss": "auto"},
    "fasttext": {},
}
DEFAULT_PRESET = "fastembed"


@dataclass
class TrainArgs:
    """Every setting of a training run. Field names follow fastText's Python binding.

    Build it with :meth:`from_preset` to get a preset's values for the settings not given.
    """

    lr: float = 0.1
    dim: int = 100
    epoch: int = 5
    word_ngrams: int = 1
    bucket: int = 2_000_000
    min_count: int = 1
    min_count_label: int = 1
    min_count_ngram: int = 1
    minn: int = 0
    maxn: int = 0
    loss: str = "softmax"
    optimizer: str = "sgd"
    pooling: str = "mean"
    threads: int = 0  # 0: every core
    seed: int = 0
    label_prefix: str = "__label__"
    preset: str = "fasttext"

    @classmethod
    def from_preset(cls, preset=None, **given):
        """The settings ``given`` (None: not given), the rest from ``preset``."""
        preset = DEFAULT_PRESET if preset is None else preset
        if preset not in PRESETS:
            raise ArgumentError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
        known = {f.name for f in dataclasses.fields(cls)} - {"preset"}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ArgumentError(f"unknown training argument: {unknown[0]}")
        values = dict(PRESETS[preset])
        values.update({k: v for k, v in given.items() if v is not None})
        return cls(preset=preset, **values)

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raise :class:`ArgumentError` on the first bad setting."""
        _check_int("dim", self.dim, low=1)
        _check_int("epoch", self.epoch, low=1)
        _check_int("word_ngrams", self.word_ngrams, low=1)
        _check_int("bucket", self.bucket, low=0, high=2**31 - 1)
        _check_int("min_count", self.min_count, low=1)
        _check_int("min_count_label", self.min_count_label, low=1)
        _check_int("min_count_ngram", self.min_count_ngram, low=1)
        _check_int("minn", self.minn, low=0)
        _check_int("maxn", self.maxn, low=0)
        _check_int("threads", self.threads, low=0)
        _check_int("seed", self.seed, low=0, high=2**63 - 1)
        if isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real):
            raise ArgumentError(f"lr must be a number, got {self.lr!r}")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ArgumentError(f"lr must be a finite number > 0, got {self.lr}")
        if self.maxn and self.minn > self.maxn:
            raise ArgumentError(f"minn ({self.minn}) must not exceed maxn ({self.maxn})")
        if self.loss not in LOSSES:
            raise ArgumentError(f"loss must be one of {', '.join(LOSSES)}; got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ArgumentError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        if self.preset not in PRESETS:
            raise ArgumentError(f"preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")
        if self.pooling not in POOLINGS:
            raise ArgumentError(f"pooling must be one of {', '.join(POOLINGS)}; got {self.pooling!r}")
        if not isinstance(self.label_prefix, str) or not self.label_prefix or any(
                c.isspace() or c == "\0" for c in self.label_prefix):
            raise ArgumentError(
                f"label_prefix must be a non-empty string without whitespace, got {self.label_prefix!r}")
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
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Build from a stored dict, ignoring keys this version does not know."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def describe_presets():
    """One line per preset with the settings presets differ in, for ``--help``."""
    fields = {f.name: f.default for f in dataclasses.fields(TrainArgs)}
    keys = [k for k in fields if any(k in values for values in PRESETS.values())]
    keys += [k for k in ("dim", "epoch", "loss", "optimizer") if k not in keys]
    return [f"{name}: " + ", ".join(f"{k.replace('_', '-')} {values.get(k, fields[k])}" for k in keys)
            for name, values in PRESETS.items()]


def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ArgumentError(f"{name} must be {bound}, got {value}")
