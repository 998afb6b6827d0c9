"""Autotune's choice of setting: the defaults are kept unless a challenger's mean beats theirs by
more than the held-out noise (fastembed.autotune_standings). Synthetic trial records: no training.

The references are written out here: the binomial standard error sqrt(p(1-p)/n), the standard
error of the difference of two means sigma * sqrt(1/k1 + 1/k2), and a Monte Carlo estimate of a
label F1's spread.
"""

import math

import numpy as np
import pytest

from fastembed.autotune_standings import Standings, label_f1_noise, metric_noise, noise_margin

N_VALID = 545  # TREC-6's held-out lines in the benchmark
DEFAULTS = {"lr": 0.3, "epoch": 5}


def se(p, n=N_VALID):
    return math.sqrt(p * (1 - p) / n)


def run(trial, settings, score, noise_p=0.9, seed=None, split=None):
    """A trial record; a setting's k-th run gets seed k and the split "given", then "swapped" (as the
    search runs them), unless given."""
    return {"trial": trial, "settings": dict(settings), "score": score, "status": "ok", "noise": se(noise_p),
            "seed": seed, "split": split}


def number_runs(records):
    seen = {}
    for r in records:
        key = tuple(sorted(r["settings"].items()))
        k = seen[key] = seen.get(key, 0) + 1
        if r.get("seed") is None:
            r["seed"] = k
        if r.get("split") is None:
            r["split"] = "given" if k == 1 else "swapped"
    return records


def standings_of(*records):
    standings = Standings()
    for record in number_runs(list(records)):
        standings.add(record, model=f"model {record['trial']}")
    return standings


def challenger(epoch):
    return {"lr": 0.3, "epoch": epoch}


def test_a_challenger_within_the_margin_is_not_chosen():
    sigma = se(0.9)  # 0.0129: the defaults' runs agree, so the binomial error decides
    lead = 0.8 * sigma
    s = standings_of(run(0, DEFAULTS, 0.9), run(1, DEFAULTS, 0.9),
                     run(2, challenger(10), 0.9 + lead), run(3, challenger(10), 0.9 + lead))
    assert s.best_group()[0]["trial"] == 0 and s.best_score() == pytest.approx(0.9)
    selection = s.selection()
    assert selection["chosen"] == "defaults" and selection["defaults_runs"] == [0, 1]
    assert selection["margin"] == pytest.approx(sigma * math.sqrt(1 / 2 + 1 / 2))
    (verdict,) = selection["challengers"]
    assert verdict["trials"] == [2, 3] and not verdict["accepted"]
    assert verdict["lead"] == pytest.approx(lead) and verdict["binomial_se"] == pytest.approx(sigma)
    assert "defaults are kept" in selection["reason"] and "within the margin" in selection["reason"]


def test_a_challenger_beyond_the_margin_is_chosen():
    sigma = se(0.9)
    s = standings_of(run(0, DEFAULTS, 0.9), run(1, DEFAULTS, 0.9),
                     run(2, challenger(10), 0.9 + 1.2 * sigma), run(3, challenger(10), 0.9 + 1.2 * sigma),
                     run(4, challenger(20), 0.9 + 1.1 * sigma), run(5, challenger(20), 0.9 + 1.1 * sigma))
    assert [t["trial"] for t in s.best_group()] == [2, 3]  # the best mean of those beyond the margin
    selection = s.selection()
    assert selection["chosen"] == "challenger" and selection["margin"] == pytest.approx(sigma)
    assert [v["accepted"] for v in selection["challengers"]] == [True, True]
    assert "beats the defaults'" in selection["reason"]


def test_a_split_effect_shared_by_both_settings_cancels_in_the_paired_spread():
    # Both settings score 4 points higher on the swapped split: the unpaired sd of each (0.028)
    # would exceed the binomial 0.0129, but the paired differences agree (0.02 and 0.02).
    sigma = se(0.9)
    s = standings_of(run(0, DEFAULTS, 0.88), run(1, DEFAULTS, 0.92),
                     run(2, challenger(10), 0.90), run(3, challenger(10), 0.94))
    selection = s.selection()
    assert selection["chosen"] == "challenger" and selection["margin"] == pytest.approx(sigma)
    (verdict,) = selection["challengers"]
    assert verdict["spread_from"] == "paired" and verdict["spread_se"] == pytest.approx(0.0, abs=1e-12)


def test_the_paired_spread_widens_the_margin():
    # Differences -0.01 (given split) and +0.07 (swapped): mean 0.03, paired se sd/sqrt(2) = 0.04.
    s = standings_of(run(0, DEFAULTS, 0.90), run(1, DEFAULTS, 0.90),
                     run(2, challenger(10), 0.89), run(3, challenger(10), 0.97))
    selection = s.selection()
    assert selection["chosen"] == "defaults"  # the binomial margin (0.0129) alone would accept it
    assert selection["margin"] == pytest.approx(0.04) and selection["challengers"][0]["lead"] == pytest.approx(0.03)


def test_runs_that_do_not_pair_fall_back_to_the_unpaired_spread():
    runs = (0.88, 0.92)
    sd = abs(runs[0] - runs[1]) / math.sqrt(2)
    lead = 2 * se(0.9)  # beyond the binomial margin, within the observed spread
    s = standings_of(run(0, DEFAULTS, runs[0]), run(1, DEFAULTS, runs[1]),
                     run(2, challenger(10), 0.9 + lead, seed=5), run(3, challenger(10), 0.9 + lead, seed=6))
    selection = s.selection()
    assert selection["chosen"] == "defaults" and selection["challengers"][0]["spread_from"] == "unpaired"
    assert selection["margin"] == pytest.approx(sd)  # sd * sqrt(1/2 + 1/2)


def test_the_margin_is_one_standard_error_of_the_difference_of_the_means():
    d = [run(0, DEFAULTS, 0.8, noise_p=0.8)]
    c = [run(1, challenger(10), 0.8, noise_p=0.8)]
    assert noise_margin(d, c)["margin"] == pytest.approx(se(0.8) * math.sqrt(2))  # one run each
    assert noise_margin(d, [], runs=2)["margin"] == pytest.approx(se(0.8) * math.sqrt(1.5))


def test_a_first_run_is_repeated_only_if_it_clears_the_bar():
    sigma = se(0.9)
    s = standings_of(run(0, DEFAULTS, 0.9), run(1, DEFAULTS, 0.9))
    s.pending = None
    s.add(run(2, challenger(10), 0.9 + 0.5 * sigma), "m")  # above the defaults' mean, within the margin
    assert s.pending is None and set(s.models) == {0}
    s.add(run(3, challenger(20), 0.9 + 1.5 * sigma), "m")
    assert s.pending["trial"] == 3 and set(s.models) == {0, 3}
    # Run once while the defaults ran twice: not eligible, whatever its score.
    assert s.best_group()[0]["trial"] == 0
    assert [v["trials"] for v in s.selection()["challengers"]] == []
    assert "no other setting was run twice" in s.selection()["reason"] and "trial 3" in s.selection()["reason"]
    assert s.selection()["margin"] == pytest.approx(sigma)


def test_without_a_repeat_single_runs_are_compared_with_the_wider_margin():
    sigma = se(0.9)
    s = standings_of(run(0, DEFAULTS, 0.9), run(1, challenger(10), 0.9 + 1.3 * sigma))
    assert s.best_group()[0]["trial"] == 0  # 1.3 sigma < sqrt(2) sigma
    s = standings_of(run(0, DEFAULTS, 0.9), run(1, challenger(10), 0.9 + 1.5 * sigma))
    assert s.best_group()[0]["trial"] == 1


def test_defaults_that_did_not_finish_leave_the_best_mean():
    failed = {"trial": 0, "settings": dict(DEFAULTS), "score": None, "status": "diverged"}
    s = standings_of(failed, run(1, challenger(10), 0.7), run(2, challenger(20), 0.71))
    assert s.best_group()[0]["trial"] == 2 and s.selection()["defaults_trial"] is None


def test_metric_noise_is_the_binomial_standard_error():
    rng = np.random.default_rng(0)
    p, n = 0.85, 600
    draws = rng.binomial(n, p, size=20000) / n
    assert metric_noise(p, n) == pytest.approx(draws.std(), rel=0.03)
    assert metric_noise(1.0, n) == 0.0 and metric_noise(0.5, 0) == 0.0


@pytest.mark.parametrize("j, n", [(0.3, 200), (0.6, 400), (0.9, 1000)])
def test_label_f1_noise_matches_a_simulation(j, n):
    # n lines relevant to the label: each a hit (TP) with probability J, else a FP or a FN.
    rng = np.random.default_rng(1)
    tp = rng.binomial(n, j, size=20000)
    f1 = 2 * tp / (2 * tp + (n - tp))
    f1_mean = float(f1.mean())
    assert label_f1_noise(f1_mean, n) == pytest.approx(f1.std(), rel=0.05)
