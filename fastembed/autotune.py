"""Autotune: search the training settings on a validation corpus, within a time budget.

As fastText's autotune, :func:`autotune` trains trial after trial on the training corpus and
scores each on the validation corpus; it returns the best setting's model. The settings the
caller gives stay fixed; the others are searched (:mod:`fastembed.autotune_space`).

The budget is wall time for everything (reading, building the dictionaries, training,
validation). Every trial uses all the training threads. Before a trial starts, its time is
predicted from the trials before it (seconds per unit of work of the same optimizer, see
:func:`_work` and :func:`_rate`); a trial
predicted to overrun gets fewer epochs, or another setting. A trial still running at the
deadline is cut (the poll of the training loop raises) and does not count. So the search ends
within the budget, give or take one poll of the training loop (0.1 s) and one validation.

A setting that scores above the best one is trained again with the next seed before it can
take its place, and settings run twice are compared by their mean
(:class:`fastembed.autotune_standings.Standings`): on the small validation sets of the
benchmark, the seed alone moves a score as much as most settings do. The defaults (the first
trial) are kept unless a challenger's mean beats theirs by more than the held-out noise (one
standard error of the difference, from the number of validation lines and the seed spread).
With a refit to come, the second run trains and scores on a swapped split
(:func:`fastembed.autotune_data.swapped_split`: as many training lines as the validation set
has are held out instead of it), so that the mean is over two samples of lines. The model
returned is the best setting's run that scored highest (or its refit, below).

Dictionaries are built once per setting of the dictionary (word n-grams, character n-grams,
min counts) and kept for the next trials of the same setting (:class:`_CorpusCache`).

With ``refit`` (the default), the best setting is trained once more at the end on the training
and validation lines together, as scikit-learn's searches with ``refit=True``: the held-out
10% of the benchmark cost 0.6-0.8 points of test P@1 on TREC-6 and TREC-50 (fastembed's
defaults on 90% and on 100% of the training set). Its time is reserved in the budget: it is
predicted from the best trial's time, scaled by the size of the joined corpus, and no trial is
planned that would leave too little of the budget for its own refit or the best one's. The
epoch count (and the learning rate) found by the search apply as they are: they are passes
over the corpus, and 11% more lines change neither the passes the corpus needs nor the decay
schedule (it runs over all tokens of all epochs). A refit predicted to overrun is skipped, one
that overruns is cut; either way the search's model is returned, and
``train_stats["autotune"]["refit"]`` says why.
"""

import dataclasses
import math
import time

import numpy as np

from fastembed.autotune_data import joined, swapped_split, validation_bytes
from fastembed.autotune_report import Report, callback_info
from fastembed.autotune_space import Space, dictionary_key
from fastembed.autotune_standings import Standings, label_f1_noise, metric_noise
from fastembed.errors import ArgumentError, TrainingDiverged
from fastembed.model.training import build_training_corpus, train_on_corpus
from fastembed.settings import AUTOTUNE_SETTINGS, TrainArgs, check_autotune_metric
from fastembed.text.reader import read_bytes

__all__ = ["autotune"]

_BY_NAME = {s.name: s for s in AUTOTUNE_SETTINGS}
# A new trial's time is predicted as the median rate (seconds per unit of work) of the recent
# trials times _SAFETY: on the shared 2-core machine the same trial's time varied by up to 1.3x.
# The median, not the maximum: a trial that compiled a kernel variant took seconds more.
_SAFETY = 1.3
_RECENT = 6
# A trial whose epochs must be cut below this fraction to fit says little: another is drawn.
_MIN_EPOCH_FRACTION = 0.34
_POLL_S = 0.1  # the training loop checks the deadline this often
# A cut trial's threads finish their chunks before the search goes on: 0.45 s past the poll was
# measured (TREC-6, dim 300, a load average of 17 on 2 cores), and the refit was then skipped.
_CUT_S = 0.5
_DRAWS = 30  # settings drawn per trial before the search decides nothing fits any more
_CACHED_CORPORA = 3  # encoded corpora kept (each is about the size of the corpus file)


class _Cut(Exception):
    """Raised by the training poll at the deadline: the running trial is abandoned."""


def autotune(input, validation, *, duration=None, metric=None, refit=None, preset=None, verbose=1,
             callback=None, **settings):
    """Search the settings not given for the best score on ``validation`` in ``duration`` seconds.

    Parameters
    ----------
    input : str, path, bytes or list of str
        The training corpus, as :func:`fastembed.train_supervised` takes it.
    validation : str, path, or (texts, labels)
        A labelled corpus in fastText's format, or texts (str) with their labels (a label, or a
        list of labels per text; without the label prefix).
    duration : float, optional
        Seconds for the whole search (default 300, as fastText).
    metric : {"precision@1", "f1", "f1:LABEL"}, optional
        Maximised on ``validation``; "f1" is the micro-F1 of each line's top label, "f1:LABEL"
        the F1 of one label (its name with or without the prefix). Default "precision@1".
    refit : bool, optional
        Train the best setting again on the training and validation lines together, if it fits
        in the budget (default True).
    preset : {"fastembed", "fasttext"}, optional
        Where the fixed settings that are not searched (bucket, seed, ...) come from.
    verbose : int
        0 silent; 1 a line per trial on stderr.
    callback : callable, optional
        Called after every trial with a dict (``trial``, ``elapsed_s``, ``score``,
        ``best_score``, ``settings``, ``status``); returning False ends the search.
    **settings
        Training settings: these are fixed, the others searched.

    Returns
    -------
    Model
        The best setting's model (of its run that scored highest). Its
        ``train_stats["autotune"]`` holds the metric, the best setting's mean score and its runs
        (``best_score``, ``best_runs``, ``best_trial``: the run returned), its settings,
        ``selection`` (the defaults' runs and mean, each challenger's mean, lead, ``margin`` and
        whether it was ``accepted``, the ``margin`` used and the ``reason`` for the choice), every
        trial (settings, seed, score, ``noise``: the score's standard error, status, seconds,
        ``repeat_of``, ``split``: "given" or "swapped"), and ``refit``: its
        ``status`` ("done", "off", "skipped", "cut" or "diverged"), ``predicted_s``,
        ``seconds`` and ``reason``.
    """
    t_start = time.perf_counter()
    duration = float(_checked(duration, "autotune_duration"))
    deadline = t_start + duration
    metric = _BY_NAME["autotune_metric"].default if metric is None else metric
    metric_kind, metric_label = check_autotune_metric(metric)
    refit = _checked(refit, "autotune_refit")
    if callback is not None and not callable(callback):
        raise ArgumentError(f"callback must be callable, got {callback!r}")
    fixed = {k: v for k, v in settings.items() if v is not None}
    base = TrainArgs.from_preset(preset, **fixed)  # validates the fixed settings
    valid_data = validation_bytes(validation, base.label_prefix)
    train_data = read_bytes(input)  # read once: every dictionary is built from these bytes
    rng = np.random.default_rng(base.seed)
    space = Space(base, fixed)
    cache = _CorpusCache(train_data)
    report = Report(verbose, duration, metric, t_start)
    trials, standings, stopped = [], Standings(), "duration"
    # The joined corpus over the training one: what a refit's time scales by (0: no refit).
    growth = (train_data.size + len(valid_data)) / max(train_data.size, 1) if refit else 0.0
    cut_at = deadline  # a trial running past this is cut: the best setting's refit comes after
    # With a refit, a repeat trains and scores on the swapped split (fastembed.autotune_data):
    # its (cache, validation bytes), made at the first repeat.
    swapped = None

    def check():
        if time.perf_counter() > cut_at:
            raise _Cut

    while True:
        reserve = _reserve_s(standings.best_run(), cache, space, growth)
        cut_at = deadline - reserve
        remaining = deadline - time.perf_counter()
        repeat = standings.pending
        if repeat is not None:
            candidate = _repeat_if_it_fits(repeat, trials, cache, space, remaining, reserve, growth)
            standings.pending = None
        else:
            candidate = _next_trial(space, rng, trials, standings.best_settings(), cache, remaining, duration,
                                    reserve, growth)
        if candidate is None:
            if repeat is not None:
                continue  # the repeat does not fit: perhaps a shorter new trial does
            stopped = "duration" if trials else "no trial fits"
            break
        args = TrainArgs.from_preset(preset, **candidate)
        t0 = time.perf_counter()
        record = {"trial": len(trials), "settings": _searched(args, space), "score": None, "build_s": 0.0,
                  "seed": args.seed, "repeat_of": None if repeat is None else repeat["trial"], "split": "given"}
        model = None
        trial_cache, trial_valid = cache, valid_data
        if repeat is not None and refit:
            if swapped is None:
                split = swapped_split(train_data, valid_data, base.seed)
                swapped = (None, None) if split is None else (_CorpusCache(split[0], keep=1), split[1])
            if swapped[0] is not None:
                (trial_cache, trial_valid), record["split"] = swapped, "swapped"
        try:
            dictionary, corpus = trial_cache.get(args, check)
            record["build_s"] = time.perf_counter() - t0
            if not trials and corpus.has_multi_label_line():
                space.restrict_loss_to_ova()
            if metric_label is not None:
                metric_label = _known_label(dictionary, metric_label, base.label_prefix)
            t_train = time.perf_counter()
            model = train_on_corpus(args, dictionary, corpus, verbose=0, check=check)
            record["train_s"] = time.perf_counter() - t_train
            record["work"] = _corpus_work(args, dictionary, corpus)
            record["score"], record["noise"] = _score(model, trial_valid, metric_kind, metric_label)
            record["status"] = "ok"
        except _Cut:
            record["status"] = "cut"
        except TrainingDiverged:
            record["status"] = "diverged"
        record["seconds"] = time.perf_counter() - t0
        record["settings"] = _searched(args, space)  # loss "auto" is settled by now
        space.tried(record["settings"])
        trials.append(record)
        standings.add(record, model)
        model = None  # a worse trial's tables are freed before the next one is allocated
        report.trial(record, standings)
        if callback is not None and callback(callback_info(record, standings, t_start)) is False:
            stopped = "callback"
            break
        if record["status"] == "cut":
            break
    best = standings.best_run()
    if best is None:
        raise ArgumentError(
            f"autotune: no trial finished in autotune_duration={duration:g} s "
            f"({len(trials)} started); give it more time")
    best_model = standings.models[best["trial"]]
    report.done(standings, len(trials), time.perf_counter() - t_start, stopped)
    refit_record = {"status": "off", "predicted_s": None, "seconds": 0.0, "reason": "autotune_refit=False"}
    build_s = sum(cache.build_s.values()) + (sum(swapped[0].build_s.values()) if swapped and swapped[0] else 0.0)
    if refit:
        predicted = _refit_s(best, cache, space, growth)
        cache.corpora.clear()  # the search's encoded corpora are not needed any more
        swapped = None  # nor the swapped split's corpus and bytes
        standings.models = {}  # nor its other models: the best one stays, for a refit that fails
        args = TrainArgs.from_preset(preset, **{**space.fixed, **best["settings"], "seed": best["seed"]})
        refit_record, refit_model = _refit(train_data, valid_data, args, predicted, deadline)
        if refit_model is not None:
            best_model = refit_model
        report.refit(refit_record)
    elapsed = time.perf_counter() - t_start
    best_model.train_stats.update(
        autotune={"metric": metric, "best_score": standings.best_score(), "best_trial": best["trial"],
                  "selection": standings.selection(),
                  "best_runs": [t["trial"] for t in standings.best_group()],
                  "best_settings": dict(best["settings"]), "trials": trials, "duration_s": duration,
                  "elapsed_s": elapsed, "stopped_by": stopped, "refit": refit_record},
        autotune_score=float(standings.best_score()), autotune_trials=len(trials), total_s=elapsed,
        read_s=build_s + (refit_record.get("build_s") or 0.0))
    return best_model


# -- the pieces ---------------------------------------------------------------------------------

def _checked(value, name):
    """``value`` of the autotune setting ``name`` checked, or its default if None."""
    setting = _BY_NAME[name]
    if value is None:
        return setting.default
    setting.check(value)
    return value


def _known_label(dictionary, label, prefix):
    """``label`` as the dictionary names it (with its prefix); ArgumentError if it has none such."""
    name = label if label.startswith(prefix) else prefix + label
    if name not in dictionary.labels:
        raise ArgumentError(f"autotune_metric: {label!r} is not a label of the training corpus")
    return name


def _score(model, valid_data, kind, label):
    """The metric of ``model`` on the validation bytes (0 where it is undefined), and its
    standard error from the lines it counts (:mod:`fastembed.autotune_standings`)."""
    n, correct, n_pred, n_gold, _ = model._evaluate(valid_data, 1, 0.0)
    if n == 0:
        raise ArgumentError("autotune_validation has no line with a label of the training corpus")
    if label is not None:
        i = model.labels.index(label)
        tp, fp, fn = int(correct[i]), int(n_pred[i] - correct[i]), int(n_gold[i] - correct[i])
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        return f1, label_f1_noise(f1, tp + fp + fn)
    precision = float(correct.sum() / max(n_pred.sum(), 1))
    recall = float(correct.sum() / max(n_gold.sum(), 1))
    if kind == "f1":
        score = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    else:
        score = precision
    return score, metric_noise(score, int(n))


def _work(args, bag_rows, n_lines, n_labels):
    """A trial's work in multiply-adds: bag rows and output rows, times dim, times epochs."""
    out_rows = math.log2(max(n_labels, 2)) if args.loss == "hs" else n_labels
    return float(args.epoch) * args.dim * (bag_rows + max(n_lines, 1) * (out_rows + 1))


def _corpus_work(args, dictionary, corpus):
    return _work(args, corpus.indices.size, int(corpus.n_lines), dictionary.nlabels)


def _searched(args, space):
    return {name: getattr(args, name) for name in space.searched}


class _CorpusCache:
    """Encoded corpora by dictionary setting, with their build times; the last few are kept."""

    def __init__(self, data, keep=_CACHED_CORPORA):
        self.data, self.keep = data, keep
        self.corpora = {}
        self.build_s = {}  # every key built so far, also the evicted ones

    def get(self, args, check):
        key = dictionary_key(args)
        if key not in self.corpora:
            check()
            t0 = time.perf_counter()
            if len(self.corpora) >= self.keep:
                del self.corpora[next(iter(self.corpora))]
            self.corpora[key] = build_training_corpus(self.data, args)
            self.build_s[key] = time.perf_counter() - t0
            check()  # a build past the deadline: the trial is cut
        else:
            self.corpora[key] = self.corpora.pop(key)  # most recently used last
        return self.corpora[key]

    def predicted_build_s(self, args):
        """0 for a cached corpus; else :meth:`build_estimate`."""
        return 0.0 if dictionary_key(args) in self.corpora else self.build_estimate(args)

    def build_estimate(self, args):
        """Seconds to build the corpus of ``args``: as measured if it was built, else the slowest
        build so far per row per token, times this one's (0 before any build)."""
        key = dictionary_key(args)
        if key in self.build_s:
            return self.build_s[key]
        if not self.build_s:
            return 0.0
        per_row = max(seconds / _rows_per_token(built[0], built[5]) for built, seconds in self.build_s.items())
        return per_row * _rows_per_token(args.word_ngrams, args.maxn)


def _next_trial(space, rng, trials, best, cache, remaining, duration, reserve, growth):
    """Settings of the next trial, with epochs that fit in ``remaining`` seconds; None if none fits.

    With a refit (``growth`` > 0: the joined corpus over the training one), the trial must
    leave time for the refit of the best setting after it: ``reserve`` seconds for the best one
    so far, or the trial's own refit (its time times ``growth``) if it becomes the best.
    """
    if not trials:
        return space.start()
    ok = [t for t in trials if t["status"] == "ok"]
    done = ok[-_RECENT:]
    if not done:
        return None
    overhead = max(t["seconds"] - t["train_s"] - t["build_s"] for t in done)  # tables, validation
    progress = 1.0 - remaining / duration
    for _ in range(_DRAWS):
        candidate = space.draw(rng, best, progress)
        args = TrainArgs.from_preset(space.preset, **candidate)
        rate = _rate(ok, args)
        build = cache.predicted_build_s(args)
        per_epoch = rate * _predicted_work(cache, dataclasses.replace(args, epoch=1))
        budget = remaining - overhead - build * _SAFETY
        # Its own refit: the training (per_epoch * epochs) and the tables again, and a build,
        # all on a corpus `growth` times as large.
        own = budget - growth * (overhead + cache.build_estimate(args) * _SAFETY)
        if per_epoch <= 0 or budget - reserve <= 0 or own <= 0:
            continue
        epochs = min(args.epoch, int((budget - reserve) / per_epoch), int(own / (per_epoch * (1.0 + growth))))
        if epochs >= 1 and epochs >= _MIN_EPOCH_FRACTION * args.epoch:
            candidate["epoch"] = epochs
            return candidate
    return None


def _rate(ok, args):
    """Seconds per unit of work (:func:`_work`) of a trial of ``args``, times _SAFETY: the median
    of the recent trials with its optimizer; before any, the slowest recent trial's. Per unit of
    work, adagrad trained 6.5 times slower than sgd on TREC-50 (1.77 s against 0.27 s for the
    same setting): the median of mostly-sgd trials had adagrad trials cut at the deadline."""
    same = [t for t in ok if t["settings"].get("optimizer", args.optimizer) == args.optimizer][-_RECENT:]
    rates = [t["train_s"] / t["work"] for t in (same or ok[-_RECENT:]) if t["work"] > 0]
    if not rates:
        return 0.0
    return (float(np.median(rates)) if same else max(rates)) * _SAFETY


def _predicted_work(cache, args):
    """:func:`_work` of a trial: on its corpus if cached, else on the largest cached one, scaled
    by the bag rows per token (word n-grams, and about 10 character n-grams per word)."""
    key = dictionary_key(args)
    if key in cache.corpora:
        dictionary, corpus = cache.corpora[key]
        return _corpus_work(args, dictionary, corpus)
    built_key, (dictionary, corpus) = max(cache.corpora.items(), key=lambda item: item[1][1].indices.size)
    rows = corpus.indices.size * _rows_per_token(args.word_ngrams, args.maxn) / _rows_per_token(
        built_key[0], built_key[5])
    return _work(args, rows, int(corpus.n_lines), dictionary.nlabels)


def _repeat_if_it_fits(record, trials, cache, space, remaining, reserve, growth):
    """The settings of ``record`` with the next seed, if a run of it fits in ``remaining`` seconds
    with the refit after it (``reserve`` for the best setting so far, or its own)."""
    runs = sum(1 for t in trials if t["settings"] == record["settings"])
    predicted = record["seconds"] - record["build_s"]
    if growth:  # on the swapped split: its dictionary is built first
        predicted += cache.build_estimate(TrainArgs.from_preset(space.preset, **{**space.fixed, **record["settings"]}))
    if predicted * _SAFETY + max(reserve, _reserve_s(record, cache, space, growth)) > remaining:
        return None
    return {**space.fixed, **record["settings"], "seed": space.base.seed + runs}


def _refit_s(record, cache, space, growth):
    """Predicted seconds of a refit of ``record``'s setting (0 without one, or without a best
    trial): its build, tables and training (and validation: a margin) times ``growth``."""
    if record is None or not growth:
        return 0.0
    args = TrainArgs.from_preset(space.preset, **{**space.fixed, **record["settings"]})
    return (record["seconds"] - record["build_s"] + cache.build_estimate(args)) * growth


def _reserve_s(record, cache, space, growth):
    """Seconds the search keeps for the refit of ``record``'s setting: its :func:`_refit_s` times
    _SAFETY, and the overrun of a trial that ends just before (one poll of the training loop and
    the end of a cut, or its tables and validation, as long as ``record``'s). Without the overrun, the last trial of a
    4-s search of 1,500 TREC-6 lines overran its prediction by 0.1 s and the refit was skipped."""
    if record is None or not growth:
        return 0.0
    overrun = _POLL_S + _CUT_S + record["seconds"] - record["train_s"] - record["build_s"]
    return _refit_s(record, cache, space, growth) * _SAFETY + overrun


def _refit(train_data, valid_data, args, predicted, deadline):
    """Train ``args`` on the training and validation lines joined, unless it is predicted to end
    past ``deadline`` (``predicted`` without the _SAFETY margin the search reserved: a refit
    that overruns is cut at the deadline anyway); (record, model or None)."""
    t0 = time.perf_counter()
    record = {"status": "done", "predicted_s": predicted, "seconds": 0.0, "build_s": None, "reason": None}
    if t0 + predicted > deadline:
        record.update(status="skipped", reason=f"predicted {predicted:.1f} s, {deadline - t0:.1f} s left")
        return record, None

    def check():
        if time.perf_counter() > deadline:
            raise _Cut

    model = None
    try:
        dictionary, corpus = build_training_corpus(joined(train_data, valid_data), args)
        record["build_s"] = time.perf_counter() - t0
        check()
        model = train_on_corpus(args, dictionary, corpus, verbose=0, check=check)
    except _Cut:
        record.update(status="cut", reason="the budget ran out (the search's model is returned)")
    except TrainingDiverged:
        record.update(status="diverged", reason="the refit diverged (the search's model is returned)")
    record["seconds"] = time.perf_counter() - t0
    return record, model


def _rows_per_token(word_ngrams, maxn):
    """Bag rows per token of a dictionary setting: its word n-grams, about 10 character n-grams."""
    return word_ngrams + (10 if maxn > 0 else 0)
