"""The classifier: its update rules against hand-computed gradients, training, prediction, files."""

import heapq
import threading
import zipfile

import numpy as np
import pytest

import fastembed
from fastembed.errors import ArgumentError, ModelFileError, TrainingDiverged
from fastembed.model.forward import predict_probs
from fastembed.model.huffman import build_paths
from fastembed.model.loss import LOSS_CODES, OPTIMIZER_CODES, loss_forward
from fastembed.model.progress import Progress
from fastembed.model.train_step import chunk_kernel
from fastembed.model.training import optimizer_state
from fastembed.model.workers import Workers, thread_local_arrays
from fastembed.settings import TrainArgs

# -- one update step against NumPy ------------------------------------------------------------


def _step(loss, optimizer, inp, out, bag, labels, lr, weights=None):
    """Run the training kernel on a single example and return the updated tables."""
    inp, out = inp.copy(), out.copy()
    indices = np.asarray(bag, dtype=np.int32)
    offsets = np.array([0, indices.size], dtype=np.int64)
    label_indices = np.asarray(labels, dtype=np.int32)
    label_offsets = np.array([0, label_indices.size], dtype=np.int64)
    w = np.zeros(0, np.float32) if weights is None else np.asarray(weights, np.float32)
    inp_state, out_state = optimizer_state(optimizer, inp), optimizer_state(optimizer, out)
    if loss == "hs":
        hs = build_paths(np.arange(out.shape[0] + 1, 0, -1))
    else:
        hs = (np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros(1, np.int64))
    workers = Workers(1)
    dim = inp.shape[1]
    probs = np.zeros(0 if loss == "hs" else out.shape[0], np.float32)
    finite = chunk_kernel(loss, optimizer)(
        inp, inp_state, out, out_state, out, out_state, out, out_state, False, indices, offsets, w,
        label_indices, label_offsets, np.array([indices.size], np.int32), np.zeros(0, np.float32),
        np.zeros(1, np.int64), 0, 1, float(lr), 1e12, *hs, 0,
        workers.counters, workers.losses, np.zeros(1, np.uint64), np.zeros(dim, np.float32),
        np.zeros(dim, np.float32), probs, np.zeros(0, np.float32))
    assert finite and workers.counters[0, 1] == 1 and workers.tokens() == indices.size
    return inp, out, hs, workers.mean_loss()


def _tables(n_rows=7, n_out=3, dim=4, seed=0):
    """Random tables; the last input row plays the zero row of unseen n-grams (rows 0..5 learn)."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n_rows, dim)).astype(np.float32),
            rng.normal(size=(n_out, dim)).astype(np.float32))


def _input_update(inp, bag, weights, grad_hidden):
    """Rows of the bag move against their share of the hidden gradient (repeats add up)."""
    expected = inp.astype(np.float64).copy()
    for r, w in zip(bag, weights):
        expected[r] -= w * grad_hidden
    return expected


@pytest.mark.parametrize("weights", [None, [0.5, 0.25, 0.25, 1.0]])
def test_softmax_sgd_step_matches_hand_gradient(weights):
    inp, out = _tables()
    bag, lr = [0, 3, 3, 5], 0.5
    w = np.full(4, 0.25) if weights is None else np.asarray(weights)
    hidden = (w[:, None] * inp[bag]).sum(0)
    scores = out.astype(np.float64) @ hidden
    p = np.exp(scores - scores.max())
    p /= p.sum()
    dscore = p - np.eye(3)[1]
    grad_hidden = out.T.astype(np.float64) @ dscore
    new_inp, new_out, _, loss = _step("softmax", "sgd", inp, out, bag, [1], lr, weights)
    np.testing.assert_allclose(new_out, out - lr * np.outer(dscore, hidden), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_inp, _input_update(inp, bag, lr * w, grad_hidden),
                               rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(-np.log(p[1] + 1e-5), rel=1e-5)


def test_the_unseen_ngram_row_never_learns():
    inp, out = _tables()
    inp[-1] = 0.0
    new_inp, _, _, _ = _step("softmax", "sgd", inp, out, [1, 6, 6], [0], 0.5)
    assert not new_inp[-1].any()
    assert not np.array_equal(new_inp[1], inp[1])


def test_ova_step_matches_hand_gradient():
    inp, out = _tables()
    bag, labels, lr = [1, 2], [0, 2], 0.3
    hidden = inp[bag].astype(np.float64).mean(0)
    s = 1 / (1 + np.exp(-(out.astype(np.float64) @ hidden)))
    y = np.array([1.0, 0.0, 1.0])
    dscore = s - y
    new_inp, new_out, _, _ = _step("ova", "sgd", inp, out, bag, labels, lr)
    np.testing.assert_allclose(new_out, out - lr * np.outer(dscore, hidden), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_inp, _input_update(inp, bag, [lr / 2] * 2, out.T @ dscore),
                               rtol=1e-5, atol=1e-6)


def test_hs_step_touches_only_the_path_and_matches_hand_gradient():
    inp, out = _tables(n_out=4)  # 5 labels -> 4 internal nodes
    bag, target, lr = [4, 0, 1], 4, 0.2
    new_inp, new_out, (paths, codes, offsets), _ = _step("hs", "sgd", inp, out, bag, [target], lr)
    hidden = inp[bag].astype(np.float64).mean(0)
    nodes = paths[offsets[target]:offsets[target + 1]]
    expected_out = out.astype(np.float64).copy()
    grad_hidden = np.zeros(4)
    for node, code in zip(nodes, codes[offsets[target]:offsets[target + 1]]):
        s = 1 / (1 + np.exp(-(out[node] @ hidden)))
        d = s - code
        grad_hidden += d * out[node]
        expected_out[node] -= lr * d * hidden
    np.testing.assert_allclose(new_out, expected_out, rtol=1e-5, atol=1e-6)
    untouched = np.setdiff1d(np.arange(4), nodes)
    np.testing.assert_array_equal(new_out[untouched], out[untouched])
    np.testing.assert_allclose(new_inp, _input_update(inp, bag, [lr / 3] * 3, grad_hidden),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["adagrad", "rowwise-adagrad"])
def test_adagrad_steps_use_the_kernel_rules(optimizer):
    inp, out = _tables()
    bag, lr = [2, 4], 0.1
    hidden = inp[bag].astype(np.float64).mean(0)
    scores = out.astype(np.float64) @ hidden
    p = np.exp(scores - scores.max())
    p /= p.sum()
    dscore = p - np.eye(3)[0]
    grad_hidden = out.T.astype(np.float64) @ dscore
    new_inp, new_out, _, _ = _step("softmax", optimizer, inp, out, bag, [0], lr)
    g_out = np.outer(dscore, hidden)
    g_in = 0.5 * grad_hidden
    if optimizer == "adagrad":
        exp_out = out - lr * g_out / (np.sqrt(g_out ** 2) + 1e-10)
        exp_in_row = lambda r: inp[r] - lr * g_in / (np.sqrt(g_in ** 2) + 1e-10)  # noqa: E731
    else:
        exp_out = out - lr * g_out / (np.sqrt((g_out ** 2).mean(1, keepdims=True)) + 1e-10)
        exp_in_row = lambda r: inp[r] - lr * g_in / (np.sqrt((g_in ** 2).mean()) + 1e-10)  # noqa: E731
    np.testing.assert_allclose(new_out, exp_out, rtol=1e-4, atol=1e-5)
    for r in bag:
        np.testing.assert_allclose(new_inp[r], exp_in_row(r), rtol=1e-4, atol=1e-5)


# -- the losses' forward against NumPy -------------------------------------------------------


def _forward(loss, out, hidden, labels=(), target=-1, backprop=False, lr=0.0, all_probs=True):
    """loss_forward on one hidden vector: (loss, probs, grad, out after the update)."""
    out = out.copy()
    n_labels = out.shape[0] + 1 if loss == "hs" else out.shape[0]
    hs = build_paths(np.arange(n_labels, 0, -1)) if loss == "hs" else (
        np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros(1, np.int64))
    probs = np.full(n_labels if all_probs or loss != "hs" else 0, np.nan, np.float32)
    node_probs = np.zeros(out.shape[0] if loss == "hs" else 0, np.float32)
    grad = np.zeros(hidden.size, np.float32)
    labels = np.asarray(labels, np.int32)
    value = loss_forward(LOSS_CODES[loss], out, optimizer_state("sgd", out), hidden, labels, 0,
                         labels.size, target, *hs, probs, node_probs, grad, np.float32(lr),
                         OPTIMIZER_CODES["sgd"], backprop)
    return value, probs, grad, out, hs


def _reference_probs(loss, out, hidden, hs):
    """Every label's probability in float64 NumPy."""
    scores = out.astype(np.float64) @ hidden
    if loss == "softmax":
        e = np.exp(scores - scores.max())
        return e / e.sum()
    node = 1 / (1 + np.exp(-scores))
    if loss == "ova":
        return node
    paths, codes, offsets = hs  # hs: the product of the branch probabilities along the path
    return np.array([np.prod(np.where(codes[offsets[i]:offsets[i + 1]], node[paths[offsets[i]:offsets[i + 1]]],
                                      1 - node[paths[offsets[i]:offsets[i + 1]]]))
                     for i in range(offsets.size - 1)])


@pytest.mark.parametrize("loss", ["softmax", "ova", "hs"])
def test_loss_forward_matches_numpy(loss):
    rng = np.random.default_rng(5)
    out = rng.normal(size=(5, 8)).astype(np.float32)
    hidden = rng.normal(size=8).astype(np.float32)
    labels, target = [1, 3], 3
    value, probs, grad, new_out, hs = _forward(loss, out, hidden, labels, target)
    expected = _reference_probs(loss, out, hidden, hs)
    sig = 1 / (1 + np.exp(-(out.astype(np.float64) @ hidden)))
    if loss == "softmax":
        expected_loss = -np.log(expected[target] + 1e-5)
    elif loss == "ova":
        y = np.isin(np.arange(5), labels)
        expected_loss = -(np.log(sig[y] + 1e-5).sum() + np.log(1 - sig[~y] + 1e-5).sum())
    else:
        assert expected.sum() == pytest.approx(1.0)  # a distribution over the 6 labels
        paths, codes, offsets = hs
        path = slice(offsets[target], offsets[target + 1])
        expected_loss = -sum(np.log((sig[n] if c else 1 - sig[n]) + 1e-5)
                             for n, c in zip(paths[path], codes[path]))
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)
    assert value == pytest.approx(expected_loss, rel=1e-5)
    # without backprop nothing is written; with it, the loss is the same and rows move
    assert not grad.any() and np.array_equal(new_out, out)
    value_bp, _, grad_bp, moved, _ = _forward(loss, out, hidden, labels, target, backprop=True, lr=0.1)
    assert value_bp == pytest.approx(value) and grad_bp.any() and not np.array_equal(moved, out)


def test_hs_training_forward_scores_only_the_target_path():
    rng = np.random.default_rng(6)
    out = rng.normal(size=(5, 8)).astype(np.float32)
    hidden = rng.normal(size=8).astype(np.float32)
    full = _forward("hs", out, hidden, target=2)
    path_only = _forward("hs", out, hidden, target=2, all_probs=False)
    assert path_only[0] == full[0] and path_only[1].size == 0


@pytest.mark.parametrize("loss", ["softmax", "ova", "hs"])
def test_predict_probs_runs_the_losses_forward(loss):
    rng = np.random.default_rng(7)
    n_out = 4 if loss == "hs" else 5
    inp = rng.normal(size=(9, 6)).astype(np.float32)
    out = rng.normal(size=(n_out, 6)).astype(np.float32)
    indices = np.array([0, 4, 4, 8, 2, 7], np.int32)
    offsets = np.array([0, 3, 3, 6], np.int64)  # the middle bag is empty: hidden is zero
    hs = build_paths(np.arange(5, 0, -1)) if loss == "hs" else (
        np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros(1, np.int64))
    probs = np.empty((3, 5), np.float32)
    predict_probs(inp, out, indices, offsets, np.zeros(0, np.float32), LOSS_CODES[loss], *hs, probs)
    for b in range(3):
        bag = indices[offsets[b]:offsets[b + 1]]
        hidden = inp[bag].astype(np.float64).mean(0) if bag.size else np.zeros(6)
        np.testing.assert_allclose(probs[b], _reference_probs(loss, out, hidden, hs), rtol=1e-5, atol=1e-7)


# -- Huffman tree -----------------------------------------------------------------------------

def test_huffman_paths_are_optimal_and_prefix_free():
    counts = np.array([50, 20, 20, 7, 2, 1])
    paths, codes, offsets = build_paths(counts)
    lengths = np.diff(offsets)
    # optimal cost: sum of the merged weights of a textbook Huffman construction
    heap = list(counts)
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        cost += a + b
        heapq.heappush(heap, a + b)
    assert (lengths * counts).sum() == cost
    words = {tuple(codes[offsets[i]:offsets[i + 1]][::-1]) for i in range(counts.size)}
    assert len(words) == counts.size
    for a in words:
        for b in words:
            assert a == b or a != b[:len(a)]
    assert set(paths.tolist()) == set(range(counts.size - 1))


# -- arguments ---------------------------------------------------------------------------------

def test_presets_fill_only_what_is_not_given():
    a = TrainArgs.from_preset("fasttext", dim=7)
    assert (a.dim, a.pooling, a.word_ngrams, a.lr) == (7, "mean", 1, 0.1)
    b = TrainArgs.from_preset(None, lr=0.05)
    assert b.preset == "fastembed" and b.lr == 0.05 and b.pooling == "tfidf"
    with pytest.raises(ArgumentError, match="preset"):
        TrainArgs.from_preset("nope")
    with pytest.raises(ArgumentError, match="unknown training argument: dimm"):
        TrainArgs.from_preset(None, dimm=3)


@pytest.mark.parametrize("field,value", [
    ("dim", 0), ("epoch", -1), ("lr", float("nan")), ("lr", float("inf")), ("lr", 0.0),
    ("word_ngrams", 0), ("loss", "hinge?"), ("optimizer", "adam"), ("dim", 2.5),
    ("label_prefix", ""), ("bucket", -5),
])
def test_bad_arguments_raise_one_line_errors(field, value):
    with pytest.raises(ArgumentError) as info:
        TrainArgs(**{field: value})
    assert field.split("_")[0] in str(info.value) and "\n" not in str(info.value)


# -- training on a real corpus -----------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(trec_train):
    return fastembed.train_supervised(str(trec_train), preset="fasttext", epoch=10, lr=0.5,
                                      word_ngrams=2, dim=20, bucket=100_000, threads=1, verbose=0)


def test_learns_trec(trained, trec_test):
    n, p, r = trained.test(trec_test)
    assert n == 500
    assert p == r  # one label per line, k=1
    assert p > 0.75  # a majority-class guess gets 0.226


@pytest.mark.slow_without_jit
def test_threads_one_is_bit_identical_and_seed_matters(trec_train):
    kw = dict(epoch=2, dim=8, word_ngrams=2, bucket=5000, threads=1, verbose=0)
    a = fastembed.train_supervised(str(trec_train), seed=3, **kw)
    b = fastembed.train_supervised(str(trec_train), seed=3, **kw)
    c = fastembed.train_supervised(str(trec_train), seed=4, **kw)
    np.testing.assert_array_equal(a.input_matrix, b.input_matrix)
    np.testing.assert_array_equal(a.output_matrix, b.output_matrix)
    assert not np.array_equal(a.output_matrix, c.output_matrix)


@pytest.mark.slow_without_jit
def test_two_threads_learn_as_well_as_one():
    # 20 labels: each thread trains its own copy of the output layer, so without the merges
    # into the shared one, P@1 falls to chance (0.04 measured)
    from conftest import FIXTURES  # noqa: PLC0415

    train = FIXTURES / "20newsgroups_train_head1200.txt.gz"
    test = FIXTURES / "20newsgroups_test_head400.txt.gz"
    p = {threads: fastembed.train_supervised(str(train), epoch=10, threads=threads, seed=1,
                                             verbose=0).test(test)[1]
         for threads in (1, 2)}
    assert p[1] > 0.55  # measured 0.63-0.65 over seeds 0-3, as 2 threads
    assert p[2] > p[1] - 0.03


def test_ctrl_c_stops_every_worker_and_propagates(trec_train, monkeypatch):
    # Ctrl-C reaches the main thread while it polls the workers: simulate it at the first poll
    # that sees progress, with training far from done
    polls = []

    def interrupt(self, tokens, lr, loss, final=False):
        polls.append(tokens)
        if tokens > 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fastembed.train_supervised(str(trec_train), epoch=100_000, dim=10, threads=2, verbose=0)
    assert polls[-1] > 0
    assert not _training_threads()


def _training_threads():
    return [t for t in threading.enumerate() if t.name.startswith("fastembed-train")]


def test_workers_run_every_item_once_and_report_errors():
    seen = np.zeros(1000, np.int64)
    threads_used = set()

    def step(thread, start, stop):
        threads_used.add(thread)
        seen[start:stop] += 1
        return True

    with Workers(3, poll_interval=0.001) as workers:
        for _ in range(2):
            assert workers.run_epoch(1000, 7, step, lambda: None)
        assert len(_training_threads()) == 2  # the calling thread and the same 2 every epoch
    assert (seen == 2).all() and threads_used <= {0, 1, 2}
    assert not _training_threads()

    def failing(thread, start, stop):
        if start >= 500:
            raise ValueError("boom")
        return True

    with pytest.raises(ValueError, match="boom"):
        Workers(2).run_epoch(1000, 10, failing, lambda: None)
    assert not _training_threads()
    # a step asking to stop ends the epoch: no chunk is claimed after it
    claimed = []

    def stopping(thread, start, stop):
        claimed.append(start)
        return start < 100

    with Workers(1) as workers:
        assert not workers.run_epoch(1000, 10, stopping, lambda: None)
    assert claimed == list(range(0, 110, 10))


def test_thread_local_arrays_share_no_cache_line():
    arrays = thread_local_arrays(4, (3, 5), np.float32, like=np.arange(15, dtype=np.float32).reshape(3, 5))
    spans = sorted((a.ctypes.data, a.ctypes.data + a.nbytes) for a in arrays)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert (end - 1) // 64 < start // 64
    assert all(a.flags.c_contiguous and (a == np.arange(15).reshape(3, 5)).all() for a in arrays)


@pytest.mark.slow_without_jit
@pytest.mark.parametrize("loss", ["ova", "hs"])
@pytest.mark.parametrize("optimizer", ["sgd", "rowwise-adagrad"])
def test_other_losses_and_optimizers_learn(trec_train, trec_test, loss, optimizer):
    m = fastembed.train_supervised(str(trec_train), epoch=10, lr=0.5, dim=20, loss=loss,
                                   optimizer=optimizer, threads=1, verbose=0)
    assert m.test(trec_test)[1] > 0.65


@pytest.mark.slow_without_jit
def test_initialisation_is_uniform_within_bounds(trec_train):
    m = fastembed.train_supervised(str(trec_train), preset="fasttext", epoch=1, lr=1e-9, dim=50,
                                   threads=1, verbose=0)
    rows = m.input_matrix[:-1]
    assert np.abs(rows).max() <= 1 / 50  # fastText's U(-1/dim, 1/dim)
    assert abs(rows.mean()) < 1e-3 and rows.std() == pytest.approx(1 / 50 / np.sqrt(3), rel=0.02)
    assert not m.input_matrix[-1].any()  # the unseen-bucket row stays zero


@pytest.mark.parametrize("threads", [1, 2])
def test_divergence_names_the_learning_rate(trec_train, threads):
    with pytest.raises(TrainingDiverged, match=r"lr=1e\+30"):
        fastembed.train_supervised(str(trec_train), lr=1e30, epoch=1, dim=10, threads=threads,
                                   verbose=0)


# -- prediction ---------------------------------------------------------------------------------

def test_predict_probabilities_and_order(trained):
    labels, probs = trained.predict("What is the capital of France ?", k=-1)
    assert len(labels) == 6 and set(labels) == set(trained.labels)
    assert np.all(np.diff(probs) <= 0)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert trained.predict("Who wrote Hamlet ?")[0] == ("__label__HUM",)


def test_predict_batch_with_threshold(trained):
    texts = ["Who wrote Hamlet ?", "How far is the moon ?", "", "What does NASA stand for ?"]
    batch = trained.predict(texts, k=3, threshold=0.2)
    assert len(batch) == 4
    for text, (labels, probs) in zip(texts, batch):
        assert np.all(probs >= 0.2) and len(labels) == len(probs) <= 3
        single = trained.predict(text, k=3, threshold=0.2)
        assert single[0] == labels
        np.testing.assert_allclose(single[1], probs)


def test_predict_rejects_newlines_and_bad_k(trained):
    with pytest.raises(ValueError, match="newline"):
        trained.predict("two\nlines")
    with pytest.raises(ValueError, match="k must be"):
        trained.predict("x", k=0)


def test_test_equals_counting_predictions(trained, trec_test):
    lines = trec_test.read_text().splitlines()
    gold = [line.split(" ", 1)[0] for line in lines]
    texts = [line.split(" ", 1)[1] for line in lines]
    preds = trained.predict(texts, k=2)
    hits = sum(g in labels for g, (labels, _) in zip(gold, preds))
    n, p, r = trained.test(trec_test, k=2)
    assert p == pytest.approx(hits / (2 * n)) and r == pytest.approx(hits / n)
    per_label = trained.test_label(trec_test, k=1)
    hum = per_label["__label__HUM"]
    pred1 = [labels[0] for labels, _ in trained.predict(texts, k=1)]
    tp = sum(g == p_ == "__label__HUM" for g, p_ in zip(gold, pred1))
    assert hum["precision"] == pytest.approx(tp / pred1.count("__label__HUM"))
    assert hum["recall"] == pytest.approx(tp / gold.count("__label__HUM"))


def test_sentence_and_word_vectors_are_means_of_rows(trained):
    d = trained.dictionary
    w = "capital"
    wid = d.get_word_id(w)
    np.testing.assert_array_equal(trained.get_word_vector(w), trained.input_matrix[wid])
    assert not trained.get_word_vector("zzzunseenzzz").any()
    bags = trained._encode(["the capital"])
    expected = trained.input_matrix[bags.indices].mean(0)
    np.testing.assert_allclose(trained.get_sentence_vector("the capital"), expected, rtol=1e-6)
    # words, bigrams (the bigram with </s> too) and </s>: 2 words + </s> + 2 bigrams
    assert bags.indices.size == 5


# -- files --------------------------------------------------------------------------------------

def test_save_load_round_trip(trained, tmp_path, trec_test):
    path = tmp_path / "m.fe"
    trained.save(path)
    loaded = fastembed.load_model(path)
    np.testing.assert_array_equal(loaded.input_matrix, trained.input_matrix)
    assert loaded.words == trained.words and loaded.labels == trained.labels
    assert loaded.args == trained.args
    assert loaded.test(trec_test) == trained.test(trec_test)
    with np.load(path, allow_pickle=False) as archive:  # no pickle anywhere
        assert all(archive[name].dtype != object for name in archive.files)


def test_failed_save_keeps_the_old_file(trained, tmp_path, monkeypatch):
    path = tmp_path / "m.fe"
    path.write_bytes(b"precious")

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        trained.save(path)
    assert path.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["m.fe"]  # no temp file left behind


def test_bad_model_files_give_clear_errors(trained, tmp_path):
    good = tmp_path / "good.fe"
    trained.save(good)
    data = good.read_bytes()
    cases = {
        "truncated.fe": data[: len(data) // 2],
        "foreign.fe": b"\x00\x01 not a model at all",
        "empty.fe": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    for path in [*(tmp_path / n for n in cases), other, tmp_path / "missing.fe"]:
        with pytest.raises(ModelFileError) as info:
            fastembed.load_model(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    # a corrupted byte in an array member fails its CRC check
    corrupt = bytearray(data)
    with zipfile.ZipFile(good) as zf:
        member = zf.getinfo("input_matrix.npy")
    corrupt[member.header_offset + 200] ^= 0xFF
    (tmp_path / "corrupt.fe").write_bytes(bytes(corrupt))
    with pytest.raises(ModelFileError):
        fastembed.load_model(tmp_path / "corrupt.fe")


@pytest.mark.slow_without_jit
def test_min_count_ngram_keeps_exactly_the_frequent_buckets(trec_train):
    from text_reference import RefDict  # noqa: PLC0415

    m = fastembed.train_supervised(str(trec_train), preset="fasttext", word_ngrams=2,
                                   bucket=50_000, min_count_ngram=3, epoch=1, threads=1, verbose=0)
    data = trec_train.read_bytes()
    ref = RefDict(data, word_ngrams=2, bucket=50_000)
    nwords = m.dictionary.nwords
    lines = ref.encode(data, keep_all=False, hashed=True)[0]
    raw = np.array([r for rows, _, _ in lines for r in rows])  # rows of the full (nwords + bucket) space
    buckets, counts = np.unique(raw[raw >= nwords] - nwords, return_counts=True)
    assert set(m.bucket_ids.tolist()) == set(buckets[counts >= 3].tolist())
    assert m.input_matrix.shape[0] == nwords + (counts >= 3).sum() + 1
    # a line with a pruned bucket reads the zero row for it
    rare = set(buckets[counts < 3].tolist())
    i = next(i for i, (rows, _, _) in enumerate(lines) if rare & {r - nwords for r in rows})
    bag = m.dictionary.encode(data.splitlines(keepends=True)[i]).indices
    assert m.dictionary.unseen_row in bag and not m.input_matrix[m.dictionary.unseen_row].any()


@pytest.mark.slow_without_jit
def test_auto_loss_is_ova_on_multi_label_corpora(trec_train):
    from conftest import FIXTURES  # noqa: PLC0415

    reuters = FIXTURES / "reuters21578_modapte_train_slice.txt.gz"  # has multi-label lines
    kw = dict(epoch=1, dim=8, threads=1, verbose=0)
    assert fastembed.train_supervised(str(reuters), **kw).args.loss == "ova"
    assert fastembed.train_supervised(str(trec_train), **kw).args.loss == "softmax"
    assert fastembed.train_supervised(str(reuters), preset="fasttext", **kw).args.loss == "softmax"
