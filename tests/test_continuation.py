"""Continued training (init_model), checkpoints and resume, and deterministic=True.

The expectations are independent of the code under test: word and label counts from Python's
Counter over the raw lines, document frequencies from sets of tokens, rows that training never
touches compared with the init model's, an uninterrupted run for a resumed one, and 1 thread
for 2 and 4.
"""

import os
import subprocess
import sys
import zipfile
from collections import Counter
from types import SimpleNamespace

import numba
import numpy as np
import pytest

import fastembed
from fastembed.errors import ArgumentError, ModelFileError
from fastembed.model import continuation

SMALL = dict(dim=16, epoch=3, threads=1, verbose=0, seed=3)


@pytest.fixture(scope="module")
def halves(trec_train):
    """The 2,000 TREC-6 lines of ``trec_train`` in two parts; the second gets a label and words the first never has."""
    lines = trec_train.read_text().splitlines()
    first = [line for line in lines[:1200] if not line.startswith("__label__ABBR")]
    second = lines[1200:] + ["__label__NEWLABEL zyzzyva quokka frobnicate"] * 20
    return first, second


def _tokens(lines):
    words, labels = Counter(), Counter()
    for line in lines:
        for token in line.split():
            (labels if token.startswith("__label__") else words)[token] += 1
        words["</s>"] += 1
    return words, labels


def _counts(model):
    d = model.dictionary
    return (dict(zip(d.words, d.word_counts.tolist())), dict(zip(d.labels, d.label_counts.tolist())))


# -- continued training ------------------------------------------------------------------------

@pytest.mark.slow_without_jit
@pytest.mark.parametrize("optimizer", ["sgd", "adagrad", "rowwise-adagrad"])
def test_continued_training_adds_the_new_corpus_and_keeps_the_rest(halves, tmp_path, optimizer):
    first, second = halves
    base = fastembed.train_supervised(first, optimizer=optimizer, lr=0.2, **SMALL)
    base.save(tmp_path / "base.fe")
    model = fastembed.train_supervised(second, init_model=tmp_path / "base.fe", verbose=0)
    assert model.args.to_dict() == base.args.to_dict()  # settings left out: the init model's
    # the dictionary is that of both corpora: counts add up
    words, labels = _tokens(first + second)
    assert _counts(model) == (dict(words), dict(labels))
    assert model.dictionary.word_counts.tolist() == sorted(words.values(), reverse=True)
    assert set(base.bucket_ids.tolist()) <= set(model.bucket_ids.tolist())
    assert model.predict("zyzzyva quokka frobnicate")[0] == ("__label__NEWLABEL",)
    # a word of the first corpus only is never trained on again: row and accumulators as they were
    second_words = _tokens(second)[0]
    untouched = [w for w in base.words if w not in second_words][:50]
    assert len(untouched) == 50
    old = np.array([base.dictionary.get_word_id(w) for w in untouched])
    new = np.array([model.dictionary.get_word_id(w) for w in untouched])
    np.testing.assert_array_equal(model.input_matrix[new], base.input_matrix[old])
    (base_sums, base_row_sums), (sums, row_sums) = base.optimizer_state[0], model.optimizer_state[0]
    if optimizer == "adagrad":
        np.testing.assert_array_equal(sums[new], base_sums[old])
        assert (sums[new] > 0).any()
    if optimizer == "rowwise-adagrad":
        np.testing.assert_array_equal(row_sums[new], base_row_sums[old])


@pytest.mark.slow_without_jit
def test_continuing_in_memory_equals_continuing_from_the_file(halves, tmp_path):
    first, second = halves
    base = fastembed.train_supervised(first, optimizer="adagrad", **SMALL)
    base.save(tmp_path / "base.fe")
    from_file = fastembed.train_supervised(second, init_model=tmp_path / "base.fe", verbose=0)
    in_memory = fastembed.train_supervised(second, init_model=base, verbose=0)
    np.testing.assert_array_equal(from_file.input_matrix, in_memory.input_matrix)
    np.testing.assert_array_equal(from_file.output_matrix, in_memory.output_matrix)


@pytest.mark.slow_without_jit
def test_the_schedule_restarts_and_the_optimizer_state_carries_on(halves):
    """Continuing on the same corpus: the same dictionary with doubled counts; Adagrad's sums
    only grow from the init model's; with lr near 0 the tables stay where they were, so the
    schedule starts from the lr given, not where the first run ended."""
    first, _ = halves
    kw = dict(SMALL, epoch=1, optimizer="adagrad", min_count_ngram=1)
    base = fastembed.train_supervised(first, **kw)
    continued = fastembed.train_supervised(first, init_model=base, verbose=0, epoch=1)
    # the same dictionary: nothing new, counts doubled
    assert continued.words == base.words
    np.testing.assert_array_equal(continued.dictionary.word_counts, 2 * base.dictionary.word_counts)
    # the accumulators only grow (Adagrad sums squares): the state was carried on, not reset
    grew = continued.optimizer_state[0][0] - base.optimizer_state[0][0]
    assert (grew >= 0).all() and grew.any()
    restarted = fastembed.train_supervised(first, init_model=base, verbose=0, epoch=1, lr=1e-9)
    # lr near 0 leaves the tables where they were: the schedule starts from the lr given
    np.testing.assert_allclose(restarted.input_matrix, base.input_matrix, atol=1e-6)


def test_tfidf_counts_the_documents_of_both_corpora(halves):
    first, second = halves
    base = fastembed.train_supervised(first, pooling="tfidf", word_ngrams=1, label_weighting=0, **SMALL)
    model = fastembed.train_supervised(second, init_model=base, verbose=0)
    assert model.documents == len(first) + len(second)
    for word in ("what", "zyzzyva", "capital"):
        expected = sum(word in line.split() for line in first + second)
        assert model.doc_freq[model.dictionary.get_word_id(word)] == expected
    row = model.dictionary.get_word_id("what")
    expected_idf = np.log((1 + model.documents) / (1 + model.doc_freq[row])) + 1
    assert model.idf[row] == pytest.approx(expected_idf, rel=1e-6)


@pytest.mark.parametrize("setting,value", [("dim", 8), ("word_ngrams", 1), ("minn", 2),
                                           ("loss", "ova"), ("optimizer", "sgd"), ("bucket", 1000)])
def test_settings_that_shape_the_tables_cannot_change(halves, setting, value):
    first, second = halves
    base = fastembed.train_supervised(first[:300], optimizer="adagrad", **SMALL)
    with pytest.raises(ArgumentError, match=f"{setting}=.*differs from the init model's") as info:
        fastembed.train_supervised(second[:100], init_model=base, verbose=0, **{setting: value})
    assert "\n" not in str(info.value)


def test_hs_cannot_take_new_labels_but_continues_on_known_ones(halves):
    first, second = halves
    base = fastembed.train_supervised(first, loss="hs", **SMALL)
    with pytest.raises(ArgumentError, match="hs"):
        fastembed.train_supervised(second, init_model=base, verbose=0)
    known = [line for line in second if not line.startswith("__label__NEWLABEL")
             and not line.startswith("__label__ABBR")]
    model = fastembed.train_supervised(known, init_model=base, verbose=0)
    assert model.labels == base.labels


def test_a_version_1_adagrad_model_cannot_continue(halves, tmp_path):
    first, second = halves
    base = fastembed.train_supervised(first[:300], optimizer="adagrad", **SMALL)
    base.optimizer_state = None  # as loaded from a version-1 file
    with pytest.raises(ArgumentError, match="no optimizer state"):
        fastembed.train_supervised(second[:50], init_model=base, verbose=0)


# -- checkpoints and resume --------------------------------------------------------------------

def _interrupted(monkeypatch, after):
    """Make the checkpoint writer raise KeyboardInterrupt (Ctrl-C) once epoch ``after`` is saved."""
    save = continuation.Checkpointer.__call__

    def interrupting(self, trainer, epochs_done, shuffle_rng):
        save(self, trainer, epochs_done, shuffle_rng)
        if epochs_done == after:
            raise KeyboardInterrupt

    monkeypatch.setattr(continuation.Checkpointer, "__call__", interrupting)


def _same_model(a, b):
    np.testing.assert_array_equal(a.input_matrix, b.input_matrix)
    np.testing.assert_array_equal(a.output_matrix, b.output_matrix)
    for x, y in zip(a.optimizer_state, b.optimizer_state):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    assert a.train_stats["final_loss"] == b.train_stats["final_loss"]


@pytest.mark.parametrize("kw", [dict(optimizer="adagrad"), dict(optimizer="sgd", loss="hs"),
                                dict(optimizer="rowwise-adagrad", deterministic=True, threads=2)],
                         ids=["adagrad", "hs", "deterministic"])
@pytest.mark.slow_without_jit
def test_an_interrupted_run_resumes_bit_for_bit(trec_train, tmp_path, monkeypatch, kw):
    settings = dict(SMALL, epoch=4, **kw)
    uninterrupted = fastembed.train_supervised(str(trec_train), **settings)
    checkpoint = tmp_path / "run.ckpt"
    with monkeypatch.context() as patch:
        _interrupted(patch, after=2)
        with pytest.raises(KeyboardInterrupt):
            fastembed.train_supervised(str(trec_train), checkpoint=checkpoint, **settings)
    # the checkpoint is a model too: it loads and predicts
    assert fastembed.load_model(checkpoint).predict("who is the president ?")[0]
    resumed = fastembed.train_supervised(str(trec_train), resume=checkpoint,
                                         checkpoint=checkpoint, verbose=0)
    _same_model(resumed, uninterrupted)
    # the last checkpoint holds the final model
    np.testing.assert_array_equal(fastembed.load_model(checkpoint).input_matrix,
                                  uninterrupted.input_matrix)


def test_a_continued_run_resumes_bit_for_bit(halves, tmp_path, monkeypatch):
    first, second = halves
    base = fastembed.train_supervised(first, optimizer="adagrad", **SMALL)
    uninterrupted = fastembed.train_supervised(second, init_model=base, verbose=0)
    with monkeypatch.context() as patch:
        _interrupted(patch, after=1)
        with pytest.raises(KeyboardInterrupt):
            fastembed.train_supervised(second, init_model=base, verbose=0,
                                       checkpoint=tmp_path / "c.ckpt")
    resumed = fastembed.train_supervised(second, resume=tmp_path / "c.ckpt", verbose=0)
    _same_model(resumed, uninterrupted)


def test_resume_refuses_another_corpus_other_settings_and_plain_models(halves, tmp_path):
    first, second = halves
    fastembed.train_supervised(first[:500], checkpoint=tmp_path / "c.ckpt", **SMALL)
    with pytest.raises(ArgumentError, match="not the one of the checkpoint"):
        fastembed.train_supervised(first[:400], resume=tmp_path / "c.ckpt", verbose=0)
    with pytest.raises(ArgumentError, match="dim=8 differs from the checkpoint's"):
        fastembed.train_supervised(first[:500], resume=tmp_path / "c.ckpt", verbose=0, dim=8)
    fastembed.load_model(tmp_path / "c.ckpt").save(tmp_path / "plain.fe")
    with pytest.raises(ArgumentError, match="not a checkpoint"):
        fastembed.train_supervised(first[:500], resume=tmp_path / "plain.fe", verbose=0)
    with pytest.raises(ModelFileError, match="no such model file"):
        fastembed.train_supervised(first[:500], resume=tmp_path / "missing.ckpt", verbose=0)
    with pytest.raises(ArgumentError, match="not both"):
        fastembed.train_supervised(first[:500], resume=tmp_path / "c.ckpt",
                                   init_model=tmp_path / "plain.fe", verbose=0)


# -- deterministic -----------------------------------------------------------------------------

@pytest.mark.parametrize("lengths,batch,chunk", [([3, 0, 9, 1, 9, 4], 2, 2), ([3, 0, 9, 1, 9, 4], 10, 4),
                                                  ([], 4, 3), ([5], 1, 1), (list(range(50)) * 3, 7, 16)])
def test_room_for_a_batch_is_the_rows_of_its_largest_bags(lengths, batch, chunk):
    """The update lists of deterministic mode hold the rows of any batch: the ``batch`` largest
    bags' rows, counted a chunk of lines at a time (the whole sorted list is the reference)."""
    from fastembed.model.deterministic import _largest_bags_rows

    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    assert _largest_bags_rows(offsets, batch, chunk_lines=chunk) == sum(sorted(lengths, reverse=True)[:batch])


@pytest.mark.parametrize("kw", [dict(), dict(loss="ova", optimizer="adagrad"),
                                dict(loss="hs", preset="fasttext")], ids=["softmax", "ova", "hs"])
@pytest.mark.slow_without_jit
def test_deterministic_models_are_the_same_for_1_2_and_4_threads(trec_train, trec_test, kw):
    lines = trec_test.read_text().splitlines()
    models = [fastembed.train_supervised(str(trec_train), deterministic=True,
                                         **dict(SMALL, **kw, threads=threads))
              for threads in (1, 2, 4)]
    probs = [model.predict_block("\n".join(lines).encode() + b"\n", k=-1) for model in models]
    for other in probs[1:]:
        np.testing.assert_array_equal(other[0], probs[0][0])
        np.testing.assert_array_equal(other[1], probs[0][1])  # probabilities, bit for bit
    if not kw:  # softmax; ova + Adagrad on this 2,000-line slice is 4 points behind (see report)
        hogwild = fastembed.train_supervised(str(trec_train), **SMALL)
        # about as accurate as hogwild (one seed each): within 7 of the 500 test questions
        assert models[0].test(str(trec_test))[1] >= hogwild.test(str(trec_test))[1] - 0.015


def test_deterministic_training_gives_back_numbas_thread_count(trec_train):
    """Numba's thread count is the calling thread's: a deterministic run on 1 thread must not leave
    later parallel work of that thread (batch prediction) on one thread."""
    before = numba.get_num_threads()
    fastembed.train_supervised(str(trec_train), deterministic=True, **SMALL)  # SMALL: threads=1
    assert numba.get_num_threads() == before


def test_deterministic_multi_label_draws_do_not_depend_on_threads():
    lines = [f"__label__a __label__b __label__c word{i % 7} other{i % 5}" for i in range(600)]
    a, b = (fastembed.train_supervised(lines, deterministic=True, loss="softmax",
                                       **dict(SMALL, threads=t)) for t in (1, 2))
    np.testing.assert_array_equal(a.output_matrix, b.output_matrix)


# -- command line ------------------------------------------------------------------------------

def _cli(*args):
    # the user's process, compiled even in the NUMBA_DISABLE_JIT=1 coverage run: as pure Python it
    # printed NumPy's scalar overflow warning before the one error line (issue 12)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    return subprocess.run([sys.executable, "-m", "fastembed", *map(str, args)], capture_output=True,
                          text=True, env=env)


def test_cli_init_checkpoint_and_resume(halves, tmp_path):
    first, second = halves
    (tmp_path / "a.txt").write_text("\n".join(first) + "\n")
    (tmp_path / "b.txt").write_text("\n".join(second) + "\n")
    small = ["--dim", "8", "--epoch", "2", "--threads", "1", "-q"]
    done = _cli("train", tmp_path / "a.txt", "-o", tmp_path / "a.fe", *small)
    assert done.returncode == 0, done.stderr
    done = _cli("train", tmp_path / "b.txt", "--init", tmp_path / "a.fe", "-o", tmp_path / "b.fe",
                "--checkpoint", tmp_path / "b.ckpt", "-q")
    assert done.returncode == 0, done.stderr
    model = fastembed.load_model(tmp_path / "b.fe")
    assert "__label__NEWLABEL" in model.labels and model.args.dim == 8
    done = _cli("train", tmp_path / "b.txt", "--resume", tmp_path / "b.ckpt", "-o", tmp_path / "c.fe", "-q")
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(fastembed.load_model(tmp_path / "c.fe").input_matrix, model.input_matrix)
    for bad in (["--init", tmp_path / "a.fe", "--dim", "16"], ["--resume", tmp_path / "a.fe"]):
        done = _cli("train", tmp_path / "b.txt", "-o", tmp_path / "d.fe", "-q", *bad)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("fastembed: error: ")


# -- with the flow features: texts/labels, sample and class weights, the callback, patience ----

def _texts_labels(lines):
    labels = [line.split()[0] for line in lines]
    texts = [" ".join(line.split()[1:]) for line in lines]
    return texts, labels


def test_continuing_on_texts_and_labels_equals_continuing_on_lines(halves):
    first, second = halves
    base = fastembed.train_supervised(first, optimizer="adagrad", **SMALL)
    from_lines = fastembed.train_supervised(second, init_model=base, verbose=0)
    texts, labels = _texts_labels(second)  # one label per line in TREC-6
    from_texts = fastembed.train_supervised(texts=texts, labels=labels, init_model=base, verbose=0)
    assert "__label__NEWLABEL" in from_texts.labels
    _same_model(from_lines, from_texts)


def test_deterministic_weights_scale_the_learning_rate(trec_train):
    """A weight of 2 on every line is lr doubled (scaling by 2 is exact in floating point); a
    weight of 0 leaves a line out; class weights give the same model for 1 and 2
    threads."""
    n = len(trec_train.read_text().splitlines())
    kw = dict(SMALL, deterministic=True, optimizer="sgd")
    doubled = fastembed.train_supervised(str(trec_train), sample_weight=np.full(n, 2.0),
                                         **dict(kw, lr=0.1))
    _same_model(doubled, fastembed.train_supervised(str(trec_train), **dict(kw, lr=0.2)))
    # weight 0 leaves a line out: the rows of words only in left-out lines keep their start
    lines = trec_train.read_text().splitlines()
    kept = np.arange(n) % 2 == 0
    weights = kept.astype(np.float64)
    halved = fastembed.train_supervised(str(trec_train), sample_weight=weights, **kw)
    only_left_out = set(w for line, k in zip(lines, kept) if not k for w in line.split()[1:])
    only_left_out -= set(w for line, k in zip(lines, kept) if k for w in line.split()[1:])
    from fastembed.model.training import _init_tables

    start = SimpleNamespace(input_matrix=_init_tables(halved.args, halved.dictionary)[0])
    rows = [halved.dictionary.get_word_id(w) for w in sorted(only_left_out)]
    rows = [r for r in rows if r >= 0]
    assert len(rows) > 50
    np.testing.assert_array_equal(halved.input_matrix[rows], start.input_matrix[rows])
    assert not np.array_equal(halved.input_matrix, start.input_matrix)
    a, b = (fastembed.train_supervised(str(trec_train), class_weight="balanced", **dict(kw, threads=t))
            for t in (1, 2))
    _same_model(a, b)
    assert not np.array_equal(a.input_matrix,
                              fastembed.train_supervised(str(trec_train), **kw).input_matrix)


def test_the_callback_stops_a_deterministic_run(trec_train):
    calls = []

    def stop_after_first_epoch(progress):
        calls.append(progress)
        return not progress.get("epoch_end")

    model = fastembed.train_supervised(str(trec_train), deterministic=True, callback=stop_after_first_epoch,
                                       **SMALL)
    assert model.train_stats["stopped_by"] == "callback"
    assert model.train_stats["epochs_trained"] == 1


def _without_time(history):
    return [{k: v for k, v in entry.items() if k != "elapsed"} for entry in history]


@pytest.fixture(scope="module")
def patience_run(trec_train, trec_test):
    """A run that early stopping ends: best epoch 5, stopped after epoch 7 (patience 2)."""
    kw = {"dim": 20, "epoch": 20, "lr": 1.0, "bucket": 50_000, "threads": 1, "seed": 5, "verbose": 0,
          "label_weighting": 0.0, "valid": str(trec_test), "patience": 2}
    model = fastembed.train_supervised(str(trec_train), **kw)
    assert (model.train_stats["best_epoch"], model.train_stats["epochs_trained"]) == (5, 7)
    return kw, model


# The epochs chosen below are the compiled run's (best 5, stopped after 7): as Python
# (NUMBA_DISABLE_JIT=1) the float rounding of the reductions differs and this seed stops at (4, 6).
@pytest.mark.jit_only
@pytest.mark.parametrize("after", [1, 2, 5, 6, 7])
def test_a_resumed_run_with_patience_stops_where_the_uninterrupted_one_does(trec_train, tmp_path,
                                                                            monkeypatch, patience_run, after):
    """Interrupted after epoch 1 (the best so far), 2 (epoch 1 still best: its tables are in the
    checkpoint), 5 (the best), 6 (waiting) or 7 (stopped): resumed, the same epochs, the same
    history, the same best epoch's model, bit for bit."""
    kw, uninterrupted = patience_run
    with monkeypatch.context() as m:
        _interrupted(m, after=after)
        with pytest.raises(KeyboardInterrupt):
            fastembed.train_supervised(str(trec_train), checkpoint=tmp_path / "c.ckpt", **kw)
    with zipfile.ZipFile(tmp_path / "c.ckpt") as z:  # the best tables only when not the last epoch's
        has_best = "best.input_matrix.npy" in z.namelist()
    best_so_far = max(range(1, after + 1), key=lambda e: (
        uninterrupted.train_stats["history"][e - 1]["valid_precision_at_1"],
        -uninterrupted.train_stats["history"][e - 1]["valid_loss"], -e))
    assert has_best == (best_so_far < after)
    checkpoint = fastembed.load_model(tmp_path / "c.ckpt")
    assert _without_time(checkpoint.train_stats["history"]) == _without_time(
        uninterrupted.train_stats["history"][:after])
    resumed = fastembed.train_supervised(str(trec_train), resume=tmp_path / "c.ckpt", **kw)
    _same_model(resumed, uninterrupted)
    a, b = resumed.train_stats, uninterrupted.train_stats
    assert _without_time(a["history"]) == _without_time(b["history"])
    for key in ("best_epoch", "epochs_trained", "stopped_by", "valid_precision_at_1", "valid_loss"):
        assert a[key] == b[key], key


@pytest.mark.jit_only  # the compiled run's epochs, as above
def test_resuming_without_a_best_epoch_counts_patience_from_the_checkpoint(trec_train, tmp_path,
                                                                           monkeypatch, patience_run):
    """A checkpoint of a run without patience holds no best tables: patience starts over."""
    kw, _ = patience_run
    with monkeypatch.context() as m:
        _interrupted(m, after=6)
        with pytest.raises(KeyboardInterrupt):
            fastembed.train_supervised(str(trec_train), checkpoint=tmp_path / "c.ckpt",
                                       **dict(kw, patience=None))
    resumed = fastembed.train_supervised(str(trec_train), resume=tmp_path / "c.ckpt", **kw)
    assert [h["epoch"] for h in resumed.train_stats["history"]][:7] == list(range(1, 8))
    assert resumed.train_stats["best_epoch"] >= 7