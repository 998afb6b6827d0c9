"""The settings autotune searches, and how it draws the next trial's.

The first trial is the preset's defaults (fastembed's are the best single setting measured on
the benchmark corpora). The next ones make the single moves that helped most on some benchmark
corpora (:data:`FIRST_MOVES`) to the best setting so far. After them, each trial either perturbs the best setting so far (a few of
its values moved: a continuous one by a log-normal factor, an ordered one by a step, a choice
to another) or, with a probability that falls from 15% to 0 over the budget, draws every value
at random. The perturbations narrow as the budget is used, as in fastText's autotune.
"""

import math

from fastembed.settings import TrainArgs

__all__ = ["SEARCHED", "Space", "dictionary_key"]

# name: ("log", low, high) continuous on a log scale (int if the setting is), ("ordered", values)
# or ("choice", values). Ranges: lr and epoch far beyond the best values met on the benchmark
# corpora (lr 0.05-1, epoch 2-50), dim 10-300 as fastText's autotune.
SEARCHED = {
    "lr": ("log", 0.01, 4.0),
    "dim": ("ordered", (10, 16, 25, 50, 100, 200, 300)),
    "epoch": ("log", 1, 200),
    "word_ngrams": ("ordered", (1, 2, 3, 4)),
    "min_count_ngram": ("ordered", (1, 2, 3, 5, 8)),
    "min_count": ("ordered", (1, 2, 3)),
    "char_ngrams": ("ordered", ((0, 0), (3, 5), (2, 5), (3, 6))),
    "pooling": ("choice", ("mean", "sqrt", "tfidf")),
    "label_weighting": ("ordered", (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)),  # with tfidf only
    "loss": ("choice", ("softmax", "ova", "hs")),
    "optimizer": ("choice", ("sgd", "adagrad", "rowwise-adagrad")),
}
# From the defaults, on the benchmark corpora (test P@1, 2 threads, one run each): loss "ova"
# +1.25 points on AG News and +1.2 on 20 Newsgroups (but -0.6 on TREC-50, -0.45 on SMS);
# 10 epochs instead of 5 +0.6 on TREC-50 (but -1.1 on SST-2). A 60-second search on a large
# corpus of a busy machine has time for a handful of trials: these come first.
FIRST_MOVES = ({"loss": "ova"}, {"epoch": 2.0})  # a float multiplies, anything else replaces
_MUTATE = 0.3  # probability that a perturbation moves each value (at least one moves)
_EXPLORE = 0.15  # probability of a random draw at the start, falling to 0 at the end


def dictionary_key(args):
    """The settings that decide the dictionary and the encoded corpus."""
    min_count_ngram = args.min_count_ngram if args.effective_bucket else 0  # no n-gram rows: no effect
    return (args.word_ngrams, args.min_count, args.min_count_label, min_count_ngram, args.minn,
            args.maxn, args.effective_bucket, args.label_prefix)


class Space:
    """The searched settings (those not given) of one autotune run.

    Parameters
    ----------
    base : TrainArgs
        The preset's values with the given settings: the first trial.
    fixed : dict
        The settings the caller gave: never searched. Giving ``minn`` or ``maxn`` fixes both.
    """

    def __init__(self, base, fixed):
        self.base = base
        self.preset = base.preset
        self.fixed = dict(fixed)
        names = []
        for name in SEARCHED:
            given = ("minn" in fixed or "maxn" in fixed) if name == "char_ngrams" else name in fixed
            if not given:
                names.append(name)
        self.names = tuple(names)
        self.domains = dict(SEARCHED)
        self.seen = set()
        self.moves = [m for m in FIRST_MOVES if all(name in self.names for name in m)]

    @property
    def searched(self):
        """Setting names searched (character n-grams as minn and maxn)."""
        out = []
        for name in self.names:
            out += ["minn", "maxn"] if name == "char_ngrams" else [name]
        return tuple(out)

    def restrict_loss_to_ova(self):
        """A multi-label corpus: only one-vs-all fits it."""
        self.domains["loss"] = ("choice", ("ova",))

    def start(self):
        """The first trial: the preset's defaults with the given settings."""
        values = self._values(self.base)
        self.seen.add(self._key(values))
        return self._settings(values)

    def tried(self, settings):
        """Note a finished trial's searched settings (its loss settled), so that no draw repeats them."""
        self.seen.add(self._key(self._values(TrainArgs.from_preset(self.preset, **{**self.fixed, **settings}))))

    def draw(self, rng, best, progress):
        """The next trial's settings: a perturbation of ``best`` (settings dict), or a random draw.

        ``progress`` is the used fraction of the budget; settings already tried are not repeated
        when another can be found in a few draws.
        """
        best_values = self._values(TrainArgs.from_preset(self.preset, **{**self.fixed, **best}))
        while self.moves:
            values = self._moved(best_values, self.moves.pop(0))
            if self._key(values) not in self.seen:
                self.seen.add(self._key(values))
                return self._settings(values)
        for _ in range(20):
            if rng.random() < _EXPLORE * (1.0 - progress):
                values = {name: self._random(rng, name) for name in self.names}
            else:
                values = self._perturb(rng, best_values, progress)
            if self._key(values) not in self.seen:
                break
        self.seen.add(self._key(values))
        return self._settings(values)

    # -- internals ------------------------------------------------------------------------------

    def _values(self, args):
        values = {}
        for name in self.names:
            values[name] = (args.minn, args.maxn) if name == "char_ngrams" else getattr(args, name)
        return values  # loss "auto" (the first trial's) is settled by the corpus: ova if multi-label

    def _settings(self, values):
        out = dict(self.fixed)
        for name, value in values.items():
            if name == "char_ngrams":
                out["minn"], out["maxn"] = value
            else:
                out[name] = value
        return out

    def _key(self, values):
        return tuple(sorted(values.items()))

    def _moved(self, values, move):
        out = dict(values)
        for name, change in move.items():
            if isinstance(change, float):
                kind, low, high = self.domains[name]
                out[name] = min(max(type(low)(round(out[name] * change)), low), high)
            elif change in self._choices(name):
                out[name] = change
        return out

    def _random(self, rng, name):
        kind, *domain = self.domains[name]
        if kind == "log":
            low, high = domain
            value = math.exp(rng.uniform(math.log(low), math.log(high)))
            return max(int(round(value)), 1) if isinstance(low, int) else float(value)
        values = domain[0]
        return values[int(rng.integers(len(values)))]

    def _perturb(self, rng, best, progress):
        values = dict(best)
        names = [n for n in self.names if len(self._choices(n)) != 1]
        if not names:
            return values
        moved = [n for n in names if rng.random() < _MUTATE] or [names[int(rng.integers(len(names)))]]
        width = max(0.15, 0.8 * (1.0 - progress))  # log-normal sigma, narrowing over the budget
        for name in moved:
            kind, *domain = self.domains[name]
            current = values[name]
            if kind == "log":
                low, high = domain
                value = min(max(current * math.exp(rng.normal(0.0, width)), low), high)
                values[name] = max(int(round(value)), 1) if isinstance(low, int) else float(value)
            elif kind == "ordered":
                options = domain[0]
                i = options.index(current) if current in options else _nearest(options, current)
                step = 1 if rng.random() < 0.75 else 2
                j = min(max(i + (step if rng.random() < 0.5 else -step), 0), len(options) - 1)
                values[name] = options[j]
            else:
                others = [v for v in domain[0] if v != current] or list(domain[0])
                values[name] = others[int(rng.integers(len(others)))]
        return values

    def _choices(self, name):
        kind, *domain = self.domains[name]
        return (None, None) if kind == "log" else domain[0]


def _nearest(options, value):
    """Index of the option nearest to ``value`` (a setting given outside the searched grid)."""
    if isinstance(value, tuple):
        return 0
    return min(range(len(options)), key=lambda i: abs(math.log(options[i] / value)) if value else options[i])
