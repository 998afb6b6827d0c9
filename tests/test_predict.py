"""Prediction: the one-call line kernel against a plain NumPy model, the batch path and fastText.

Models are built directly from a real corpus slice's dictionary with seeded random tables
(random weights make any wrong row, weight or label visible); no training is needed.
The reference rebuilds every bag with the plain-Python text reference (tests/text_reference.py)
and computes pooling, output layer and loss in float64 NumPy.
"""

import gzip
import json
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from text_reference import RefDict
from thread_calls import results_from_threads

import fastembed
from fastembed.model.classifier import Model, _top_k
from fastembed.model.huffman import build_paths
from fastembed.model.line_predict import top_k as line_top_k
from fastembed.model.line_predict import worth_threads
from fastembed.settings import TrainArgs
from fastembed.text import build_corpus

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture_lines(name, n=None):
    with gzip.open(os.path.join(FIXTURES, name), "rb") as f:
        lines = f.read().split(b"\n")[:-1]
    return lines[:n] if n else lines


def strip_labels(line: bytes) -> bytes:
    return b" ".join(t for t in line.split(b" ") if not t.startswith(b"__label__"))


TRAIN = b"\n".join(fixture_lines("trec6_train_slice.txt.gz")) + b"\n"
# real unseen lines (the test split of another corpus), and the awkward ones
TEXTS = [strip_labels(line) for line in fixture_lines("20newsgroups_test_head400.txt.gz", 12)] + [
    b"What is the capital of France ?",
    b"How many zzunseenzz are there in qqnoword ?",
    b"",
    b"   \t ",
    b"__label__HUM",
    b"who __label__LOC wrote </s> hamlet",
    "caf\u00e9 na\u00efve \u65e5\u672c".encode(),
    b"\xff\xfe bad utf8 \xc3",
    b"what " * 2000,  # longer than the first line buffers: they grow
]


def random_model(pooling="mean", loss="softmax", dim=12, seed=0, **text):
    """A Model on TRAIN's dictionary with seeded random tables (the zero row kept zero)."""
    kw = dict(word_ngrams=2, bucket=5003, min_count_ngram=2) | text
    d, _ = build_corpus(TRAIN, **kw)
    args = TrainArgs.from_preset("fasttext", dim=dim, pooling=pooling, loss=loss, **kw)
    rng = np.random.default_rng(seed)
    inp = rng.uniform(-1, 1, (d.n_rows, dim)).astype(np.float32)
    inp[d.unseen_row] = 0.0
    n_out = d.nlabels - 1 if loss == "hs" else d.nlabels
    out = rng.uniform(-1, 1, (n_out, dim)).astype(np.float32)
    idf = None
    if pooling == "tfidf":
        idf = rng.uniform(0.5, 4.0, d.n_rows).astype(np.float32)
        idf[d.unseen_row] = 0.0
    return Model(args, d, inp, out, idf=idf), RefDict(TRAIN, **kw)


def reference_probs(model, ref, text: bytes):
    """Label probabilities of one line, in float64 NumPy from the text reference's rows."""
    (rows, _, _), = ref.encode(text + b"\n", keep_all=True)[0]
    rows = np.asarray(rows, dtype=np.int64)
    n = rows.size
    pooling = model.args.pooling
    if n == 0:
        weights = np.zeros(0)
    elif pooling == "mean":
        weights = np.full(n, 1.0 / n)
    elif pooling == "sqrt":
        weights = np.full(n, 1.0 / np.sqrt(n))
    else:
        _, inverse, tf = np.unique(rows, return_inverse=True, return_counts=True)
        total = (1.0 + np.log(tf[inverse])) * model.idf[rows]  # each row's weight, shared by its copies
        norm = np.sqrt(np.sum(total ** 2 / tf[inverse]))
        weights = total / tf[inverse] / norm if norm > 0 else np.zeros(n)
    hidden = weights @ model.input_matrix[rows].astype(np.float64)
    scores = model.output_matrix.astype(np.float64) @ hidden
    if model.args.loss == "softmax":
        e = np.exp(scores - scores.max())
        return e / e.sum()
    if model.args.loss == "ova":
        return 1.0 / (1.0 + np.exp(-scores))
    paths, codes, offsets = build_paths(model.dictionary.label_counts)
    node = 1.0 / (1.0 + np.exp(-scores))
    return np.array([np.prod(np.where(codes[a:b] == 1, node[paths[a:b]], 1.0 - node[paths[a:b]]))
                     for a, b in zip(offsets[:-1], offsets[1:])])


def check_top(labels, probs, expected, model, k, threshold=0.0, atol=1e-5):
    """(labels, probs) are the k most probable of ``expected`` reaching ``threshold``, in order."""
    order = np.argsort(-expected, kind="stable")[:k]
    order = order[expected[order] >= threshold]
    np.testing.assert_allclose(probs, expected[order], rtol=0, atol=atol)
    ids = [model.dictionary.get_label_id(lab) for lab in labels]
    # the same labels, unless two probabilities are too close to order
    for mine, theirs in zip(ids, order):
        assert mine == theirs or abs(expected[mine] - expected[theirs]) < 1e-6


@pytest.mark.parametrize("loss", ["softmax", "ova", "hs"])
@pytest.mark.parametrize("pooling", ["mean", "sqrt", "tfidf"])
@pytest.mark.parametrize("text", [dict(), dict(minn=2, maxn=4), dict(word_ngrams=1)],
                         ids=["bigrams", "char-ngrams", "unigrams"])
def test_single_line_matches_numpy_reference(loss, pooling, text):
    model, ref = random_model(pooling, loss, **text)
    for t in TEXTS:
        expected = reference_probs(model, ref, t)
        line = t.decode("utf-8", "surrogateescape")
        atol = 1e-4 if len(t) > 5000 else 1e-5  # a float32 sum of 4,000 rows drifts further
        labels, probs = model.predict(line, k=-1)
        assert probs.dtype == np.float64 and len(labels) == model.dictionary.nlabels
        check_top(labels, probs, expected, model, len(expected), atol=atol)
        labels, probs = model.predict(line, k=2, threshold=0.2)
        check_top(labels, probs, expected, model, 2, threshold=0.2, atol=atol)


@pytest.mark.parametrize("loss,pooling", [("softmax", "tfidf"), ("hs", "sqrt"), ("ova", "mean")])
def test_single_line_batch_and_evaluation_paths_agree(loss, pooling):
    """predict(str), predict(list) (block kernel), and the CSR path of test() give the same numbers."""
    model, _ = random_model(pooling, loss, minn=2, maxn=3)
    lines = [t.decode("utf-8", "surrogateescape") for t in TEXTS]
    batch = model.predict(lines, k=3)
    for line, (labels, probs) in zip(lines, batch):
        single = model.predict(line, k=3)
        assert single[0] == labels
        np.testing.assert_array_equal(single[1], probs)
    # the evaluation path: dictionary.encode + the parallel forward kernel, full probabilities
    bags = model._encode(lines)
    all_probs = np.concatenate(list(model._bag_probabilities(bags)))
    for row, (labels, probs) in zip(all_probs, batch):
        ids = [model.dictionary.get_label_id(lab) for lab in labels]
        np.testing.assert_allclose(probs, row[ids], rtol=1e-6)
        assert np.all(row[ids[-1]] >= np.delete(row, ids)) if ids else True


@pytest.mark.slow_without_jit
def test_parallel_blocks_match_serial():
    model, _ = random_model("tfidf", "softmax")
    lines = [strip_labels(line).decode("utf-8", "surrogateescape")
             for line in fixture_lines("20newsgroups_test_head400.txt.gz")]
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    if numba.config.NUMBA_NUM_THREADS >= 2:  # the parallel kernel runs; no earlier test (training
        assert numba.get_num_threads() >= 2  # with threads=1) left this thread's count at 1
        assert worth_threads(len(data), len(lines), 0)
    assert not worth_threads(sum(map(len, lines[:2])), 2, model.dim * len(model.labels))  # two lines: serial
    big = model.predict_lines(data, k=2)
    small = [model.predict(line, k=2) for line in lines]  # one line: always the serial kernel
    assert len(big) == len(small) == len(lines)
    for (la, pa), (lb, pb) in zip(big, small):
        assert la == lb
        np.testing.assert_array_equal(pa, pb)


def test_single_lines_from_several_threads_equal_the_serial_calls():
    """The line kernel releases the GIL: each thread has its own buffers and result arrays, so
    calls in flight together give what each gives alone (sharing them gave other lines' labels,
    or crashed). Lines of every length, the one that grows the buffers included."""
    model, _ = random_model("tfidf", "softmax", minn=2, maxn=4)
    lines = [t.decode("utf-8", "surrogateescape") for t in TEXTS]
    expected = [model.predict(line, k=2) for line in lines]
    vectors = [model.get_sentence_vector(line) for line in lines]
    fresh, _ = random_model("tfidf", "softmax", minn=2, maxn=4)  # no thread has buffers yet
    for m in (model, fresh):
        order, results = results_from_threads(lambda line: m.predict(line, k=2), lines)
        for indices, got in zip(order, results):
            for i, (labels, probs) in zip(indices, got):
                assert labels == expected[i][0]
                np.testing.assert_array_equal(probs, expected[i][1])
    order, results = results_from_threads(model.get_sentence_vector, lines, rounds=3)
    for indices, got in zip(order, results):
        for i, vec in zip(indices, got):
            np.testing.assert_array_equal(vec, vectors[i])


def test_block_lines_and_thresholds():
    model, _ = random_model()
    # a final line without newline counts; blank lines get a prediction
    top_ids, top_probs, counts = model.predict_block(b"who wrote hamlet\n\nhow far", k=2, threshold=0.0)
    assert top_ids.shape == (3, 2) and counts.tolist() == [2, 2, 2]
    top_ids, _, counts = model.predict_block(b"", k=1)
    assert top_ids.shape == (0, 1) and counts.size == 0
    # nothing reaches the threshold: no label, and the unused slots are zeros
    top_ids, top_probs, counts = model.predict_block(b"who\nwhat\n", k=3, threshold=1.0)
    assert counts.tolist() == [0, 0] and not top_ids.any() and not top_probs.any()
    for labels, probs in model.predict(["who", "what"], k=3, threshold=1.0):
        assert labels == () and probs.size == 0


def test_vectors_are_the_hidden_vector():
    model, ref = random_model("sqrt", minn=2, maxn=4)
    for t in TEXTS[:14]:
        (rows, _, _), = ref.encode(t + b"\n", keep_all=True)[0]
        expected = model.input_matrix[rows].astype(np.float64).sum(0) / np.sqrt(max(len(rows), 1))
        vec = model.get_sentence_vector(t.decode("utf-8", "surrogateescape"))
        np.testing.assert_allclose(vec, expected, rtol=1e-5, atol=2e-5)  # float32 sums of ~600 rows
    for word in ["what", "capital", "zzunseenzz", "caf\u00e9"]:
        rows = ref.final(ref.word_rows(word.encode()))
        expected = model.input_matrix[rows].mean(0) if rows else np.zeros(model.dim)
        np.testing.assert_allclose(model.get_word_vector(word), expected, rtol=1e-5, atol=1e-7)


def test_replaced_tables_are_used():
    model, _ = random_model()
    before = model.predict("who wrote hamlet", k=-1)
    model.output_matrix = -model.output_matrix
    after = model.predict("who wrote hamlet", k=-1)
    assert after[0] == before[0][::-1]


# -- against fastText -------------------------------------------------------------------------

_FT_TRAIN = textwrap.dedent(
    """
    import json, sys
    import fasttext
    inp, out, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    m = fasttext.train_supervised(input=inp, epoch=0, thread=1, verbose=0, **params)
    m.save_model(out)
    """
)


@pytest.mark.parametrize("params", [dict(wordNgrams=2, bucket=2000), dict(wordNgrams=2, bucket=3000, minn=2, maxn=4),
                                    dict(wordNgrams=1)], ids=["bigrams", "char-ngrams", "unigrams"])
def test_predictions_equal_fasttext(tmp_path, params):
    """fastText's own model weights copied into a fastembed model: the same top k and probabilities.

    fastText's rows of buckets training never used are zeroed (fastembed reads its zero row
    there); fastText returns ``exp(log(p + 1e-5))``, so 1e-5 is taken off its probabilities.
    """
    fasttext = pytest.importorskip("fasttext")
    dim = 16
    corpus = tmp_path / "train.txt"
    corpus.write_bytes(TRAIN)
    bin_path = tmp_path / "ft.bin"
    subprocess.run([sys.executable, "-c", _FT_TRAIN, str(corpus), str(bin_path), json.dumps(dict(params, dim=dim))],
                   check=True, timeout=120)
    ft = fasttext.load_model(str(bin_path))
    names = {"wordNgrams": "word_ngrams", "bucket": "bucket", "minn": "minn", "maxn": "maxn"}
    kw = {names[k]: v for k, v in params.items()}
    d, _ = build_corpus(TRAIN, **kw)
    rng = np.random.default_rng(7)
    ft_in = np.asarray(ft.f.getInputMatrix())
    ft_out = np.asarray(ft.f.getOutputMatrix())
    ft_in[:] = rng.uniform(-1, 1, ft_in.shape)
    ft_out[:] = rng.uniform(-1, 1, ft_out.shape)
    unused = np.ones(d.bucket, dtype=bool)
    unused[d.bucket_ids] = False
    ft_in[d.nwords + np.flatnonzero(unused)] = 0.0
    inp = np.zeros((d.n_rows, dim), np.float32)
    inp[: d.nwords] = ft_in[[ft.f.getWordId(w) for w in d.word_bytes]]
    inp[d.nwords: d.unseen_row] = ft_in[d.nwords + d.bucket_ids]
    ft_labels = ft.f.getLabels("strict")[0]
    out = ft_out[[ft_labels.index(lab) for lab in d.labels]]
    args = TrainArgs.from_preset("fasttext", dim=dim, **kw)
    model = Model(args, d, inp, out)
    for t in TEXTS:
        if b"</s>" in t.split():
            continue  # a deliberate difference: fastText's getLine ends the line at a literal </s>
        line = t.decode("utf-8", "surrogateescape")
        theirs = ft.f.predict(t + b"\n", 3, 0.0, "surrogateescape")  # bytes: invalid UTF-8 included
        labels, probs = model.predict(line, k=3)
        np.testing.assert_allclose(probs, [p - 1e-5 for p, _ in theirs], atol=1e-5)
        all_labels, all_probs = model.predict(line, k=-1)
        p_of = dict(zip(all_labels, all_probs))
        for mine, (_, lab) in zip(labels, theirs):
            assert mine == lab or abs(p_of[mine] - p_of[lab]) < 1e-6  # a near-tie may swap


def test_load_predicts_like_the_trained_model(tmp_path):
    model, _ = random_model("tfidf", "hs", minn=2, maxn=3)
    path = tmp_path / "m.fe"
    model.save(path)
    loaded = fastembed.load_model(path)
    np.testing.assert_array_equal(loaded.bucket_ids, model.bucket_ids)
    lines = [t.decode("utf-8", "surrogateescape") for t in TEXTS]
    for (la, pa), (lb, pb) in zip(model.predict(lines, k=-1), loaded.predict(lines, k=-1)):
        assert la == lb
        np.testing.assert_array_equal(pa, pb)


@pytest.mark.parametrize("prob", [False, True])
def test_cli_stream_blocks_write_what_predict_returns(monkeypatch, prob):
    """`fastembed predict` in blocks far smaller than the input: every line once, as predict says."""
    import io

    from fastembed import cli

    model, _ = random_model("tfidf", "softmax")
    lines = [t.decode("utf-8", "surrogateescape") for t in TEXTS[:-1]] * 3
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    monkeypatch.setattr(cli, "_PREDICT_BATCH_BYTES", 97)  # lines straddle the reads
    out = io.StringIO()
    cli._predict_stream(model, io.BytesIO(data), out, 2, prob, 0.2)
    written = out.getvalue().split("\n")
    assert written[-1] == "" and len(written) - 1 == len(lines)
    for line, text in zip(lines, written):
        labels, probs = model.predict(line, k=2, threshold=0.2)
        expected = " ".join(f"{lab} {p:.6g}" for lab, p in zip(labels, probs)) if prob else " ".join(labels)
        assert text == expected


def test_predict_process_writes_every_line(tmp_path):
    """`fastembed predict` as a process of its own (which skips the interpreter's teardown)."""
    model, _ = random_model("sqrt", "ova")
    path = tmp_path / "m.fe"
    model.save(path)
    lines = [t.decode("utf-8", "surrogateescape") for t in TEXTS[:-1]] * 50
    text = tmp_path / "lines.txt"
    text.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    # the user's process: compiled kernels (pure Python warns of the hashes' integer wrap-around,
    # which tests/conftest.py silences only in this process)
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.run([sys.executable, "-m", "fastembed.cli", "predict", str(path), str(text), "-k", "2"],
                          capture_output=True, timeout=600, env=env)
    assert proc.returncode == 0 and proc.stderr == b""
    written = proc.stdout.decode().split("\n")
    assert written[-1] == "" and written[:-1] == [" ".join(labels) for labels, _ in model.predict(lines, k=2)]


def test_loading_a_fastembed_model_imports_no_fasttext_module(tmp_path):
    """Only a file that is no fastembed model is asked whether it is fastText's, so loading a .fe
    classifier leaves fastembed.fasttext unimported (tests/test_fasttext_model.py loads fastText's
    files through the same load_model)."""
    model, _ = random_model("sqrt", "ova")
    path = tmp_path / "m.fe"
    model.save(path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    code = ("import sys, fastembed; m = fastembed.load_model(sys.argv[1]); "
            "print(type(m).__name__, [k for k in sys.modules if k.startswith('fastembed.fasttext')])")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=600, check=False,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["Model", "[]"]


# -- ties: test() counts what predict() returns ----------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_evaluation_top_k_takes_ties_as_the_line_kernel_does(data):
    """_top_k (test's path) equals line_predict.top_k row by row, and the plain rule: the k
    largest by (probability descending, label id ascending), those reaching the threshold."""
    n_labels = data.draw(st.integers(1, 12))
    n = data.draw(st.integers(1, 6))
    levels = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, float("nan")])  # few values: many ties
    probs = np.array(data.draw(st.lists(st.lists(levels, min_size=n_labels, max_size=n_labels),
                                        min_size=n, max_size=n)), dtype=np.float32)
    k = data.draw(st.integers(1, n_labels))
    threshold = data.draw(st.sampled_from([0.0, 0.3, 0.75]))
    top, keep = _top_k(probs, k, threshold)
    for row, cols, kept in zip(probs, top, keep):
        numbers = [(-float(p), c) for c, p in enumerate(row) if not np.isnan(p)]
        expected = [c for _, c in sorted(numbers)[:k] if row[c] >= threshold]
        assert cols[kept].tolist() == expected and kept.tolist() == sorted(kept.tolist(), reverse=True)
        ids, out = np.zeros(k, np.int32), np.zeros(k, np.float64)
        count = line_top_k(row, k, threshold, ids, out)
        assert ids[:count].tolist() == expected


def test_labels_with_equal_output_rows_are_counted_as_predict_returns_them():
    """Labels that always occur together get equal output rows under "ova": every line ties
    them. test() and test_label() must count the label predict() returns, the lower id."""
    model, _ = random_model("mean", "ova")
    out = model.output_matrix
    out[1] = out[0]
    out[3] = out[2]
    labels = model.labels
    lines = [t.decode("utf-8", "surrogateescape") for t in TEXTS[:12]]
    valid = "".join(f"{labels[1 + 2 * (i % 2)]} {line}\n" for i, line in enumerate(lines))  # the higher id
    predicted = [got[0] for got, _ in model.predict(lines, k=1)]
    gold = [labels[1 + 2 * (i % 2)] for i in range(len(lines))]
    n, precision, _ = model.test(valid.encode(), k=1)
    assert n == len(lines)
    assert precision == sum(p == g for p, g in zip(predicted, gold)) / n
    per_label = model.test_label(valid.encode(), k=1)
    for label in set(predicted):
        hits = sum(p == g == label for p, g in zip(predicted, gold))
        assert per_label[label]["precision"] == hits / predicted.count(label)
