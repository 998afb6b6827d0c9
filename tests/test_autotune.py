"""Autotune: the budget, the choice of the best trial, the callback, the errors, the command.

The metrics are recomputed here from ``Model.predict`` and the validation lines' own labels
(plain Python), not through the ``Model.test`` that autotune scores with. Searches that train
fix ``loss`` and ``optimizer``, so that no kernel variant is compiled inside a budget (a cold
Numba cache compiles one in tens of seconds on a loaded machine), and a warm-up trains that
variant once first.
"""

import math
import re
import time

import numba
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import fastembed
from fastembed.autotune import autotune
from fastembed.autotune_data import joined, swapped_split, validation_bytes
from fastembed.autotune_space import SEARCHED, Space
from fastembed.cli import main
from fastembed.errors import ArgumentError
from fastembed.settings import TrainArgs

FIXED = {"loss": "softmax", "optimizer": "sgd", "threads": 1}
slow_without_jit = pytest.mark.slow_without_jit


def parse(path):
    """(labels, text) of each line of a fastText-format file."""
    out = []
    for line in open(path, encoding="utf-8"):
        tokens = line.split()
        out.append(([t for t in tokens if t.startswith("__label__")],
                    " ".join(t for t in tokens if not t.startswith("__label__"))))
    return out


@pytest.fixture(scope="module")
def corpus(trec_train, tmp_path_factory):
    """A training slice and a validation slice (disjoint) of TREC-6, the kernels warm. Without
    the JIT (nothing to warm), 150 and 50 lines: a trial of dim 10 then takes about a second."""
    lines = open(trec_train, encoding="utf-8").readlines()
    folder = tmp_path_factory.mktemp("autotune")
    train, valid = folder / "train.txt", folder / "valid.txt"
    n_train, n_valid = (150, 50) if numba.config.DISABLE_JIT else (1500, len(lines) - 1500)
    train.write_text("".join(lines[:n_train]), encoding="utf-8")
    valid.write_text("".join(lines[n_train:n_train + n_valid]), encoding="utf-8")
    if not numba.config.DISABLE_JIT:
        model = fastembed.train_supervised(str(train), verbose=0, epoch=1, **FIXED)
        model.test(str(valid))
    return train, valid


def precision_at_1(model, rows):
    predictions = model.predict([text for _, text in rows], k=1)
    known = set(model.labels)
    counted = [(gold, labels) for (gold, _), (labels, _) in zip(rows, predictions) if known & set(gold)]
    return sum(labels[0] in gold for gold, labels in counted) / len(counted)


def label_f1(model, rows, label):
    predicted = [labels[0] for labels, _ in model.predict([text for _, text in rows], k=1)]
    known = set(model.labels)
    kept = [(gold, p) for (gold, _), p in zip(rows, predicted) if known & set(gold)]
    tp = sum(p == label and label in gold for gold, p in kept)
    n_pred = sum(p == label for _, p in kept)
    n_gold = sum(label in gold for gold, _ in kept)
    if not tp:
        return 0.0
    precision, recall = tp / n_pred, tp / n_gold
    return 2 * precision * recall / (precision + recall)


@slow_without_jit
def test_returns_within_the_duration_and_uses_it(corpus):
    train, valid = corpus
    duration = 3.0
    t0 = time.perf_counter()
    model = fastembed.train_supervised(str(train), autotune_validation=str(valid),
                                       autotune_duration=duration, verbose=0, **FIXED)
    wall = time.perf_counter() - t0
    stats = model.train_stats["autotune"]
    assert wall < duration + 2.0  # generous slack: one poll, one validation, interpreter hiccups
    assert stats["elapsed_s"] <= wall
    assert len(stats["trials"]) >= 2 and stats["stopped_by"] == "duration"
    assert sum(t["seconds"] for t in stats["trials"]) > 0.5 * duration  # the budget was used


def expected_best_score(trials):
    """The mean score of the setting returned: the defaults' (the first trial's), unless a setting's
    mean beats it by more than the larger of the recorded binomial error times sqrt(1/k_d + 1/k)
    and the standard error of the mean of the runs' differences paired by (split, seed) (unpaired:
    the larger sample sd times sqrt(1/k_d + 1/k)); then the best such mean. Only settings run at
    least twice count if any was (the defaults always do)."""
    groups = {}
    for t in trials:
        if t["status"] == "ok":
            groups.setdefault(tuple(sorted(t["settings"].items())), []).append(t)
    if trials[0]["status"] != "ok":
        pytest.skip("the defaults' trial did not finish")
    defaults = groups[tuple(sorted(trials[0]["settings"].items()))]

    def mean(g):
        return sum(t["score"] for t in g) / len(g)

    def sd(g):
        return 0.0 if len(g) < 2 else float(np.std([t["score"] for t in g], ddof=1))

    def margin(g):
        scale = math.sqrt(1 / len(defaults) + 1 / len(g))
        d = {(t["split"], t["seed"]): t["score"] for t in defaults}
        deltas = [t["score"] - d[(t["split"], t["seed"])] for t in g if (t["split"], t["seed"]) in d]
        spread = (float(np.std(deltas, ddof=1)) / math.sqrt(len(deltas)) if len(deltas) >= 2
                  else max(sd(defaults), sd(g)) * scale)
        return max(max(t["noise"] for t in defaults) * scale, spread)

    most = 2 if any(len(g) >= 2 for g in groups.values()) else 1
    beyond = [mean(g) for g in groups.values()
              if g is not defaults and len(g) >= most and mean(g) - mean(defaults) > margin(g)]
    return max(beyond) if beyond else mean(defaults)


def check_selection(stats, n_valid):
    """Every trial's ``noise`` is the binomial error of its score on ``n_valid`` lines; the
    selection record names the margin and agrees with the choice."""
    for t in stats["trials"]:
        if t["status"] == "ok":
            assert math.isclose(t["noise"], math.sqrt(t["score"] * (1 - t["score"]) / n_valid), rel_tol=1e-9)
    selection = stats["selection"]
    assert selection["defaults_trial"] == 0 and selection["margin"] > 0 and selection["reason"]
    if selection["chosen"] == "defaults":
        assert stats["best_runs"] == selection["defaults_runs"]
        assert not any(v["accepted"] for v in selection["challengers"])
    else:
        accepted = [v for v in selection["challengers"] if v["accepted"]]
        assert accepted[0]["trials"] == stats["best_runs"] and accepted[0]["lead"] > accepted[0]["margin"]


@slow_without_jit
def test_returns_the_best_setting_by_the_metric(corpus):
    train, valid = corpus
    rows = parse(valid)
    model = autotune(str(train), str(valid), duration=4.0, verbose=0, seed=3, refit=False, **FIXED)
    stats = model.train_stats["autotune"]
    trials = stats["trials"]
    assert sum(t["status"] == "ok" for t in trials) >= 3
    assert math.isclose(stats["best_score"], expected_best_score(trials), abs_tol=1e-12)
    check_selection(stats, len(rows))
    best = trials[stats["best_trial"]]
    assert stats["best_trial"] in stats["best_runs"] and best["settings"] == stats["best_settings"]
    assert math.isclose(precision_at_1(model, rows), best["score"], abs_tol=1e-12)
    for t in trials:  # a repeat is the same setting with another seed
        if t["repeat_of"] is not None:
            first = trials[t["repeat_of"]]
            assert t["settings"] == first["settings"] and t["seed"] != first["seed"]
            assert t["split"] == "given"  # without a refit, every trial is scored on the validation set
    assert trials[1]["repeat_of"] == 0  # the first setting is confirmed first
    for name, value in stats["best_settings"].items():  # the model is the best setting's
        assert getattr(model.args, name) == value
    for name, value in FIXED.items():  # the given settings stay fixed
        assert getattr(model.args, name) == value
        assert all(name not in t["settings"] for t in trials)


@slow_without_jit  # two trials of dim 100 in 60 s: 22 s for the first one without the JIT on a busy machine
def test_a_callback_stops_the_search(corpus):
    train, valid = corpus
    seen = []

    def callback(info):
        seen.append(info)
        return len(seen) < 2

    model = autotune(str(train), str(valid), duration=60.0, verbose=0, callback=callback, **FIXED)
    stats = model.train_stats["autotune"]
    assert len(seen) == 2 and len(stats["trials"]) == 2 and stats["stopped_by"] == "callback"
    assert [info["trial"] for info in seen] == [0, 1]
    assert seen[-1]["best_score"] == stats["best_score"]
    assert set(seen[0]) == {"trial", "elapsed_s", "score", "best_score", "settings", "status"}



def stop_after(n, seen):
    """A callback that records what it is given and ends the search after ``n`` trials."""
    def callback(info):
        seen.append(info)
        return len(seen) < n
    return callback


# Searches ended by their callback, not by the clock: the same trials on any machine, and quick
# without the JIT (dim fixed at 10; the duration is only a ceiling).
def test_each_trial_is_reported_and_the_best_setting_refit(corpus, capsys):
    train, valid = corpus
    seen = []
    model = autotune(str(train), str(valid), duration=300.0, verbose=1, dim=10, seed=2,
                     callback=stop_after(3, seen), **FIXED)
    stats = model.train_stats["autotune"]
    trials = stats["trials"]
    assert len(trials) == 3 and stats["stopped_by"] == "callback"
    assert math.isclose(stats["best_score"], expected_best_score(trials), abs_tol=1e-12)
    assert "margin" in stats["selection"] and stats["selection"]["reason"]
    assert [info["trial"] for info in seen] == [0, 1, 2]
    assert [info["score"] for info in seen] == [t["score"] for t in trials]
    assert seen[-1]["best_score"] == stats["best_score"]
    refit = stats["refit"]
    assert refit["status"] == "done" and refit["reason"] is None
    assert model.train_stats["examples"] == len(parse(train)) + len(parse(valid))  # trained on both
    assert {name: getattr(model.args, name) for name in stats["best_settings"]} == stats["best_settings"]
    err = capsys.readouterr().err.splitlines()
    lines = [line for line in err if re.match(r"autotune +[\d.]+/300 s  trial ", line)]
    assert len(lines) == 3
    for line, t in zip(lines, trials):
        assert re.search(rf"trial +{t['trial']} {t['status']} +precision@1 {t['score']:.4f}", line), line
        assert "dim=10" not in line and f"lr={t['settings']['lr']:.3g}" in line  # the searched settings only
        if t["repeat_of"] is not None:
            assert f"again trial {t['repeat_of']})" in line
    assert any(line.startswith(f"autotune: best precision@1 {stats['best_score']:.4f} ") and
               "stopped by callback" in line for line in err)
    assert any(re.search(r"refit on training \+ validation data done in [\d.]+ s$", line) for line in err)


def test_label_f1_metric_and_in_memory_validation(corpus):
    train, valid = corpus
    rows = parse(valid)
    texts = [text for _, text in rows]
    labels = [[g.removeprefix("__label__") for g in gold] for gold, _ in rows]
    model = autotune(str(train), (texts, labels), duration=300.0, metric="f1:DESC", verbose=0, refit=False,
                     dim=10, seed=1, callback=stop_after(3, []), **FIXED)
    stats = model.train_stats["autotune"]
    assert stats["metric"] == "f1:DESC" and stats["refit"]["status"] == "off"
    assert math.isclose(stats["best_score"], expected_best_score(stats["trials"]), abs_tol=1e-12)
    assert math.isclose(label_f1(model, rows, "__label__DESC"), stats["trials"][stats["best_trial"]]["score"],
                        abs_tol=1e-12)
    assert model.train_stats["examples"] == len(parse(train))

def test_validation_texts_and_labels_become_corpus_lines():
    data = validation_bytes((["a b\nc", "d"], ["x", ["y", "__label__z"]]), "__label__")
    assert data.tobytes() == b"__label__x a b c\n__label__y __label__z d\n"
    with pytest.raises(ArgumentError, match="no texts"):
        validation_bytes(([], []), "__label__")


def lines_of(data):
    return data.tobytes().decode().splitlines()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text("ab \u00e9", max_size=6), min_size=0, max_size=30),
       st.lists(st.text("cd", max_size=6), min_size=0, max_size=12), st.booleans(), st.integers(0, 3))
def test_the_swapped_split_swaps_a_draw_of_training_lines_for_the_validation_lines(train, valid, newline, seed):
    train_lines = [f"__label__t{i} {t}" for i, t in enumerate(train)]  # numbered: each line unique
    valid_lines = [f"__label__v{i} {t}" for i, t in enumerate(valid)]
    train_data = "\n".join(train_lines) + ("\n" if newline and train_lines else "")
    valid_data = np.frombuffer(("".join(v + "\n" for v in valid_lines)).encode(), dtype=np.uint8)
    split = swapped_split(train_data.encode(), valid_data, seed)
    if not valid_lines or len(train_lines) < 2 * len(valid_lines):
        assert split is None
        return
    new_train, new_valid = lines_of(split[0]), lines_of(split[1])
    assert len(new_valid) == len(valid_lines) and set(new_valid) <= set(train_lines)
    assert new_valid == [t for t in train_lines if t in set(new_valid)]  # in their order
    assert new_train == [t for t in train_lines if t not in set(new_valid)] + valid_lines
    assert lines_of(joined(train_data.encode(), valid_data)) == train_lines + valid_lines


@pytest.mark.parametrize("kwargs, fragment", [
    ({"duration": 0}, "autotune_duration must be > 0.0"),
    ({"duration": float("nan")}, "finite"),
    ({"duration": "60"}, "must be a number"),
    ({"metric": "recall"}, "autotune_metric must be one of"),
    ({"metric": "f1:"}, "autotune_metric must be one of"),
    ({"callback": 3}, "callback must be callable"),
    ({"refit": 1}, "autotune_refit must be True or False"),
    ({"dim": 0}, "dim must be"),
])
def test_bad_arguments_are_argument_errors(trec_train, kwargs, fragment):
    with pytest.raises(ArgumentError, match=fragment):
        autotune(str(trec_train), str(trec_train), verbose=0, **kwargs)


@pytest.mark.parametrize("validation, fragment", [
    (3, "must be a file path or"),
    ((["a"], ["x"], ["y"]), r"\(texts, labels\)"),
    ((["a", "b"], ["x"]), "2 texts but 1 labels"),
    (("ab", ["x"]), "sequences"),
    (([1], ["x"]), "must be a str"),
    ((["a"], ["x y"]), "without whitespace"),
])
def test_bad_validation_is_an_argument_error(trec_train, validation, fragment):
    with pytest.raises(ArgumentError, match=fragment):
        autotune(str(trec_train), validation, verbose=0)


def test_duration_without_validation_is_an_error(trec_train):
    with pytest.raises(ArgumentError, match="need autotune_validation"):
        fastembed.train_supervised(str(trec_train), autotune_duration=10, verbose=0)


def test_an_unknown_metric_label_is_an_error(corpus):
    train, valid = corpus
    with pytest.raises(ArgumentError, match="not a label of the training corpus"):
        autotune(str(train), str(valid), metric="f1:NOPE", duration=30.0, verbose=0, **FIXED)


def test_a_missing_validation_file_is_an_os_error(trec_train, tmp_path):
    with pytest.raises(FileNotFoundError):
        autotune(str(trec_train), str(tmp_path / "none.txt"), verbose=0)


def test_the_space_keeps_given_settings_and_its_domains():
    import numpy as np

    fixed = {"dim": 10, "minn": 2, "maxn": 4}
    space = Space(TrainArgs.from_preset(None, **fixed), fixed)
    assert "dim" not in space.searched and "minn" not in space.searched
    rng = np.random.default_rng(0)
    best = {k: v for k, v in space.start().items() if k not in fixed}
    for i in range(200):
        settings = space.draw(rng, best, progress=i / 200)
        args = TrainArgs.from_preset(None, **settings)  # valid settings
        assert (args.dim, args.minn, args.maxn) == (10, 2, 4)
        for name in ("word_ngrams", "min_count_ngram", "pooling", "loss", "optimizer"):
            kind, *domain = SEARCHED[name]
            assert getattr(args, name) in domain[0]
        assert 0.01 <= args.lr <= 4.0 and 1 <= args.epoch <= 200
        best = {k: v for k, v in settings.items() if k not in fixed}


def test_cli_errors_are_one_line(trec_train, tmp_path):
    out = tmp_path / "m.fe"
    for extra, fragment in ((["--autotune-duration", "0"], "autotune-duration"),
                            (["--autotune-validation", str(trec_train), "--autotune-metric", "auc"],
                             "autotune_metric must be one of")):
        result = CliRunner().invoke(main, ["train", str(trec_train), "-o", str(out), *extra],
                                    catch_exceptions=False)
        err = result.stderr.strip()
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert err.count("\n") == 0 and err.startswith("fastembed: error: ") and fragment in err, err


@slow_without_jit
def test_cli_shows_progress_and_the_best_setting(corpus, tmp_path):
    train, valid = corpus
    out = tmp_path / "m.fe"
    result = CliRunner().invoke(main, ["train", str(train), "-o", str(out), "--autotune-validation",
                                       str(valid), "--autotune-duration", "2", "--loss", "softmax",
                                       "--optimizer", "sgd", "--threads", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "trial   0" in result.stderr and "autotune: best precision@1" in result.stderr
    assert "autotune" in result.stdout and out.exists()
    assert "refit on training + validation data done" in result.stderr and re.search(r"^refit +done: ", result.stdout, re.MULTILINE)
    assert re.search(rf"^examples +{len(parse(train)) + len(parse(valid)):,}$", result.stdout, re.MULTILINE)
    off = CliRunner().invoke(main, ["train", str(train), "-o", str(out), "--autotune-validation",
                                    str(valid), "--autotune-duration", "1", "--no-autotune-refit", "--loss",
                                    "softmax", "--optimizer", "sgd", "--threads", "1"], catch_exceptions=False)
    assert off.exit_code == 0 and re.search(r"^refit +off: autotune_refit=False", off.stdout, re.MULTILINE), off.output
    assert re.search(rf"^examples +{len(parse(train)):,}$", off.stdout, re.MULTILINE)


@slow_without_jit
@pytest.mark.filterwarnings("ignore:.*skipped .* lines")  # validation lines whose labels training never saw
def test_a_multi_label_corpus_is_searched_with_ova_only(tmp_path):
    import gzip

    from conftest import FIXTURES

    lines = gzip.open(FIXTURES / "reuters21578_modapte_train_slice.txt.gz", "rt", encoding="utf-8").readlines()
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("".join(lines[:-150]), encoding="utf-8")
    valid.write_text("".join(lines[-150:]), encoding="utf-8")
    fastembed.train_supervised(str(train), verbose=0, epoch=1, loss="ova", threads=1)  # warm kernels
    model = autotune(str(train), str(valid), duration=3.0, metric="f1", verbose=0, optimizer="sgd",
                     threads=1, refit=False)
    trials = model.train_stats["autotune"]["trials"]
    assert len(trials) >= 2 and {t["settings"]["loss"] for t in trials} == {"ova"}
    assert model.args.loss == "ova"
    new = [tuple(sorted(t["settings"].items())) for t in trials if t["repeat_of"] is None]
    assert len(new) == len(set(new))  # the first trial's "auto" loss, settled, is not drawn again
    rows = parse(valid)  # micro-F1 of the top label, recomputed
    known = set(model.labels)
    predicted = [labels[0] for labels, _ in model.predict([text for _, text in rows], k=1)]
    kept = [(known & set(gold), p) for (gold, _), p in zip(rows, predicted) if known & set(gold)]
    correct = sum(p in gold for gold, p in kept)
    precision, recall = correct / len(kept), correct / sum(len(gold) for gold, _ in kept)
    f1 = 2 * precision * recall / (precision + recall)
    stats = model.train_stats["autotune"]
    assert math.isclose(stats["trials"][stats["best_trial"]]["score"], f1, abs_tol=1e-12)


# -- the refit on training + validation data ------------------------------------------------------

def with_a_validation_only_label(valid, tmp_path):
    """The validation lines plus 20 of a label the training corpus never has, on a word of its own."""
    rows = parse(valid) + [(["__label__ONLYVALID"], f"zqxj question number {i}") for i in range(20)]
    path = tmp_path / "valid_plus.txt"
    path.write_text("".join(" ".join(gold) + " " + text + "\n" for gold, text in rows), encoding="utf-8")
    return path, rows


@slow_without_jit
@pytest.mark.parametrize("in_memory", [False, True])
@pytest.mark.filterwarnings("ignore:.*skipped .* lines")  # the search's validation of the new label
def test_the_refit_model_has_seen_the_validation_data(corpus, tmp_path, in_memory):
    train, valid = corpus
    path, rows = with_a_validation_only_label(valid, tmp_path)
    validation = ([t for _, t in rows], [[g.removeprefix("__label__") for g in gold] for gold, _ in rows]) \
        if in_memory else str(path)
    n_train = len(parse(train))
    model = autotune(str(train), validation, duration=4.0, verbose=0, **FIXED)
    refit = model.train_stats["autotune"]["refit"]
    assert refit["status"] == "done" and refit["reason"] is None and refit["seconds"] > 0
    assert "__label__ONLYVALID" in model.labels
    assert model.predict(["zqxj"], k=1)[0][0] == ("__label__ONLYVALID",)
    assert model.train_stats["examples"] == n_train + len(rows)
    best = model.train_stats["autotune"]["best_settings"]
    assert {name: getattr(model.args, name) for name in best} == best  # the best setting, refit

    searched = autotune(str(train), validation, duration=2.0, verbose=0, refit=False, **FIXED)
    assert "__label__ONLYVALID" not in searched.labels
    assert searched.train_stats["examples"] == n_train
    assert searched.train_stats["autotune"]["refit"]["status"] == "off"


def sleep_until_the_deadline_on_the_first_trial(t_start, duration, left):
    """A callback that lets the first trial finish, then waits until ``left`` seconds remain."""
    def callback(info):
        time.sleep(max(0.0, t_start + duration - left - time.perf_counter()))
    return callback


@slow_without_jit
def test_a_refit_predicted_to_overrun_is_skipped(corpus):
    train, valid = corpus
    duration, t0 = 3.0, time.perf_counter()
    model = autotune(str(train), str(valid), duration=duration, verbose=0, **FIXED,
                     callback=sleep_until_the_deadline_on_the_first_trial(t0, duration, 0.01))
    wall = time.perf_counter() - t0
    stats = model.train_stats["autotune"]
    assert stats["refit"]["status"] == "skipped" and "predicted" in stats["refit"]["reason"]
    assert wall < duration + 1.0
    assert model.train_stats["examples"] == len(parse(train))  # the search's model
    assert math.isclose(precision_at_1(model, parse(valid)), stats["trials"][stats["best_trial"]]["score"],
                        abs_tol=1e-12)


@slow_without_jit
def test_a_refit_that_overruns_is_cut_at_the_deadline(corpus, monkeypatch):
    import fastembed.autotune as module

    train, valid = corpus
    monkeypatch.setattr(module, "_refit_s", lambda *args: 0.0)  # predicted to fit, whatever is left
    duration, t0 = 6.0, time.perf_counter()
    # 50 epochs: a first trial well inside the budget, a refit of far more than the 0.05 s left
    model = autotune(str(train), str(valid), duration=duration, verbose=0, epoch=50, **FIXED,
                     callback=sleep_until_the_deadline_on_the_first_trial(t0, duration, 0.05))
    wall = time.perf_counter() - t0
    refit = model.train_stats["autotune"]["refit"]
    assert refit["status"] == "cut" and "budget" in refit["reason"]
    assert wall < duration + 1.5  # one poll of the training loop after the deadline, the threads' ends
    assert model.train_stats["examples"] == len(parse(train))  # the search's model


@slow_without_jit
def test_the_search_leaves_time_for_the_refit(corpus):
    train, valid = corpus
    duration, t0 = 4.0, time.perf_counter()
    model = autotune(str(train), str(valid), duration=duration, verbose=0, **FIXED)
    wall = time.perf_counter() - t0
    stats = model.train_stats["autotune"]
    assert stats["refit"]["status"] == "done" and len(stats["trials"]) >= 3  # the search left it time
    repeats = [t for t in stats["trials"] if t["repeat_of"] is not None]
    assert repeats and all(t["split"] == "swapped" for t in repeats)  # scored on other lines
    assert all(t["split"] == "given" for t in stats["trials"] if t["repeat_of"] is None)
    assert wall < duration + 1.0 and stats["elapsed_s"] <= wall
