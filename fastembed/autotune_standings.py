"""Autotune's standings: trials grouped by setting, and the choice of the setting returned.

A validation score moves by a point or two with the training seed alone (TREC-50, 545
validation lines: 0.809 and 0.794 for two seeds of the defaults), as much as most settings
differ. So a setting whose first run clears the bar (below) is trained again with the next seed
(:attr:`Standings.pending`), and among settings run twice only their mean counts; a setting run
once counts only while none was run twice (the budget allowed no repeat). The defaults always
count.

**The defaults are kept unless a challenger beats them by more than the held-out noise.** The
first trial's setting (the defaults, :meth:`fastembed.autotune_space.Space.start`) is the
incumbent; a challenger replaces it only if its mean score exceeds the defaults' mean by more
than :func:`noise_margin`: one standard error of the difference of the two means. Without it,
the best of 20-100 noisy means is chosen, and it was not the better setting on the test set:
run 4 (scripts/results/autotune.md) chose a challenger on TREC-6 that scored 0.904 on the test
set where the defaults scored 0.916 (LinearSVC 0.912), and the defaults also scored above the
search's choice on TREC-50 and IMDB. Among the challengers that clear the bar, the best mean wins.
"""

import math

__all__ = ["Standings", "label_f1_noise", "metric_noise", "noise_margin"]


def metric_noise(score, n_lines):
    """The standard error of one validation score: sqrt(p(1-p)/n), the binomial standard error
    of a proportion ``score`` of ``n_lines`` Bernoulli trials.

    That is exact for precision@1 (a line is right or wrong) and for "f1" on single-label lines
    (micro-F1 of the top label is then precision@1); for multi-label lines micro-F1 is treated as
    a proportion of its lines too (an approximation). For "f1:LABEL" the caller passes the
    lines that count for the label's F1 (true positives, false positives and false negatives),
    and the score's own error is :func:`label_f1_noise`'s.
    """
    if n_lines <= 0:
        return 0.0
    p = min(max(score, 0.0), 1.0)
    return math.sqrt(p * (1.0 - p) / n_lines)


def label_f1_noise(f1, n_relevant):
    """The standard error of one label's F1 over its ``n_relevant`` lines (TP + FP + FN).

    Each of those lines is a hit (TP) or a miss (FP or FN, never both for one label at k=1), so
    J = TP / (TP + FP + FN) is a binomial proportion; F1 = 2J / (1 + J), and by the delta method
    its error is 2 / (1 + J)^2 times J's. Without this, sqrt(F1(1-F1)/n) is off by a factor
    sqrt(2) / (1 + J) (0.7-1.4).
    """
    if n_relevant <= 0:
        return 0.0
    f1 = min(max(f1, 0.0), 1.0)
    j = f1 / (2.0 - f1)
    return 2.0 / (1.0 + j) ** 2 * math.sqrt(j * (1.0 - j) / n_relevant)


def noise_margin(defaults, challenger, runs=None):
    """How far ``challenger``'s mean must exceed ``defaults``' mean to replace them, and its parts.

    ``defaults`` and ``challenger`` are lists of ok trial records (``score``, ``noise``, ``seed``,
    ``split``); ``runs``, if given, stands for the challenger's number of runs (its records may
    be missing: the bar a first run must clear).

    One standard error of the difference of the two means, the larger of two estimates:

    - the held-out noise: each score taken as independent with the binomial error ``sigma`` of
      one score (:func:`metric_noise` or :func:`label_f1_noise` at the defaults' score, recorded
      per run as ``noise``), so ``sigma * sqrt(1/k_d + 1/k_c)`` for k_d and k_c runs (sigma for
      two runs each, the common case; sigma * 1.41 for one each);
    - the spread observed where both settings ran twice: the search runs a setting's k-th run
      with the same seed and on the same split as the defaults' k-th (the given validation
      lines, then the swapped split), so the runs pair up, and the standard error of the mean of
      the paired differences is sd(d) / sqrt(pairs). Paired, because the two splits differ in
      difficulty for every setting alike (TREC-6, seed 2: the defaults scored 0.840 on the given
      split and 0.879 on the swapped one), which cancels in a difference and would inflate an
      unpaired spread (0.027 there against a binomial 0.016). Runs that do not pair fall back
      to the larger sample sd of either setting's runs times sqrt(1/k_d + 1/k_c); without the
      challenger's runs (the bar of a first run, ``runs``) only the held-out noise counts.

    The binomial part ignores that two settings scored on the same lines are correlated, so it
    errs on the side of keeping the defaults. One standard error (a one-sided 16% chance that a
    setting no better than the defaults clears it) and not two: on the benchmark's validation
    sets (545 to 6,735 lines) one was already 0.3-1.7 points (run 5 in
    scripts/results/autotune.md), about what the settings differ by.
    """
    k_d, k_c = len(defaults), len(challenger) if runs is None else runs
    scale = math.sqrt(1.0 / k_d + 1.0 / k_c)
    binomial = max(t.get("noise", 0.0) for t in defaults)
    spread, spread_from = _paired_se(defaults, challenger), "paired"
    if not challenger:  # a first run's bar: only the held-out noise is known
        spread, spread_from = 0.0, "none"
    elif spread is None:
        spread, spread_from = max(_seed_sd(defaults), _seed_sd(challenger)) * scale, "unpaired"
    return {"margin": max(binomial * scale, spread), "binomial_se": binomial, "spread_se": spread,
            "spread_from": spread_from, "runs": [k_d, k_c]}


def _paired_se(defaults, challenger):
    """The standard error of the mean difference of runs paired by (split, seed); None for fewer
    than two pairs."""
    by_run = {_run_key(t): t["score"] for t in defaults}
    deltas = [t["score"] - by_run[_run_key(t)] for t in challenger if _run_key(t) in by_run]
    if len(deltas) < 2:
        return None
    mean = sum(deltas) / len(deltas)
    return math.sqrt(sum((d - mean) ** 2 for d in deltas) / (len(deltas) - 1) / len(deltas))


def _run_key(record):
    return record.get("split", "given"), record.get("seed")


def _seed_sd(group):
    """The sample standard deviation of a setting's scores (0 for one run)."""
    if len(group) < 2:
        return 0.0
    mean = _mean(group)
    return math.sqrt(sum((t["score"] - mean) ** 2 for t in group) / (len(group) - 1))


class Standings:
    """Trials grouped by setting; the setting returned (:meth:`best_group`); the models worth
    keeping (the best setting's best run, and a challenger's waiting for its repeat)."""

    def __init__(self):
        self.groups = {}  # settings key -> ok trial records, in order
        self.models = {}  # trial -> Model
        self.pending = None  # a trial record whose setting runs again next
        self.defaults_key = None  # the first trial's setting: kept unless beaten beyond the noise

    def add(self, record, model):
        if self.defaults_key is None:
            self.defaults_key = _settings_key(record["settings"])
        if record["status"] != "ok":
            return
        bar = self.bar()
        group = self.groups.setdefault(_settings_key(record["settings"]), [])
        group.append(record)
        self.models[record["trial"]] = model
        if len(group) == 1 and (bar is None or record["score"] > bar):
            self.pending = record
        keep = {self.best_run()["trial"]}
        if self.pending is not None:
            keep.add(self.pending["trial"])
        self.models = {t: m for t, m in self.models.items() if t in keep}

    def bar(self):
        """The score a new setting's first run must beat to be run again: the best mean, plus the
        margin while the best is the defaults (a mean of two runs must clear it in the end)."""
        group = self.best_group()
        if group is None:
            return None
        defaults = self.defaults()
        if group is defaults:
            return _mean(group) + noise_margin(defaults, [], runs=2)["margin"]
        return _mean(group)

    def defaults(self):
        """The defaults' ok runs (None if none finished)."""
        return self.groups.get(self.defaults_key)

    def decide(self):
        """The choice and its reasons: ``{"group": runs, "selection": dict for train_stats}``."""
        if not self.groups:
            return None
        defaults = self.defaults()
        most = 2 if any(len(g) >= 2 for g in self.groups.values()) else 1
        eligible = [g for g in self.groups.values() if len(g) >= most and g is not defaults]
        if defaults is None:  # the first trial diverged or was cut: the best mean, no incumbent
            best = max(eligible, key=lambda g: (_mean(g), -g[0]["trial"]))
            return {"group": best, "selection": {
                "defaults_trial": None, "chosen": "challenger", "challengers": [],
                "reason": "the defaults' trial did not finish: the best mean is chosen"}}
        d_mean = _mean(defaults)
        verdicts = []
        for g in sorted(eligible, key=lambda g: (-_mean(g), g[0]["trial"])):
            margin = noise_margin(defaults, g)
            verdicts.append({"trials": [t["trial"] for t in g], "mean": _mean(g),
                             "lead": _mean(g) - d_mean, **margin,
                             "accepted": _mean(g) - d_mean > margin["margin"]})
        accepted = [v for v in verdicts if v["accepted"]]
        selection = {"defaults_trial": defaults[0]["trial"], "defaults_mean": d_mean,
                     "defaults_runs": [t["trial"] for t in defaults], "challengers": verdicts}
        if accepted:
            top = accepted[0]
            chosen = next(g for g in eligible if [t["trial"] for t in g] == top["trials"])
            selection.update(chosen="challenger", margin=top["margin"], reason=(
                f"trial {top['trials'][0]}'s setting: mean {top['mean']:.4f} over {len(top['trials'])} run(s) "
                f"beats the defaults' {d_mean:.4f} by {top['lead']:.4f} > margin {top['margin']:.4f}"))
            return {"group": chosen, "selection": selection}
        if verdicts:
            top = verdicts[0]
            why = (f"the best challenger (trial {top['trials'][0]}: mean {top['mean']:.4f} over "
                   f"{len(top['trials'])} run(s)) leads by {top['lead']:.4f}, within the margin {top['margin']:.4f}")
            selection["margin"] = top["margin"]
        else:
            others = [g[0] for g in self.groups.values() if g is not defaults]
            selection["margin"] = noise_margin(defaults, [], runs=2)["margin"]  # a challenger's bar
            if others:
                top = max(others, key=lambda t: (t["score"], -t["trial"]))
                why = (f"no other setting was run twice (a first run is repeated only above the defaults' "
                       f"mean + margin, {d_mean + selection['margin']:.4f}; the best, trial {top['trial']}, "
                       f"scored {top['score']:.4f})")
            else:
                why = "no other setting finished"
        selection.update(chosen="defaults", reason=f"the defaults are kept: {why}")
        return {"group": defaults, "selection": selection}

    def best_group(self):
        decision = self.decide()
        return None if decision is None else decision["group"]

    def selection(self):
        decision = self.decide()
        return None if decision is None else decision["selection"]

    def best_score(self):
        group = self.best_group()
        return None if group is None else _mean(group)

    def best_run(self):
        group = self.best_group()
        return None if group is None else max(group, key=lambda t: (t["score"], -t["trial"]))

    def best_settings(self):
        run = self.best_run()
        return None if run is None else run["settings"]


def _mean(group):
    return sum(t["score"] for t in group) / len(group)


def _settings_key(settings):
    return tuple(sorted(settings.items()))
