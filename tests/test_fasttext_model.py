"""fastText models in fastembed (fastembed.fasttext.model), against fastText itself.

Reading: small fastText classifiers -- softmax with word bigrams, ova on multi-label Reuters, hs,
character n-grams on non-UTF-8 20 Newsgroups bytes -- are trained in subprocesses (one training
per process, ``thread=1``, ``MALLOC_PERTURB_=255``: see tests/test_fasttext_format.py), saved as
``.bin`` and quantized to ``.ftz`` (pruned with ``cutoff`` and ``qnorm``). ``fastembed.load_model``
must predict on every line of a real slice as fastText's own binding does: the same labels in
the same order, probabilities within 1e-5, for k = -1, 1, 3 and with a threshold; ``test``,
sentence and word vectors must agree too.

Writing: fastembed models of the fasttext preset (mean pooling; softmax, ova, hs, character
n-grams) are written with ``save_fasttext``; fastText's ``load_model`` must read the file and
predict as fastembed's model does.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from thread_calls import results_from_threads

import fastembed
from fastembed.errors import ArgumentError, ModelFileError
from fastembed.fasttext.model import FastTextModel

FIXTURES = Path(__file__).resolve().parent / "fixtures"

_TRAIN = textwrap.dedent(
    """
    import json, sys
    import fasttext
    inp, out, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if params.pop("unsupervised", False):
        m = fasttext.train_unsupervised(input=inp, dim=10, epoch=1, thread=1, verbose=0, **params)
        m.save_model(out + "/model.bin")
        sys.exit(0)
    m = fasttext.train_supervised(input=inp, dim=10, epoch=5, thread=1, verbose=0, **params)
    m.save_model(out + "/model.bin")
    m.quantize(input=inp, qnorm=True, cutoff=800, retrain=False, thread=1)
    m.save_model(out + "/model.ftz")
    """
)

CASES = {
    "softmax-bigram": ("trec6_train_slice.txt.gz", dict(wordNgrams=2, bucket=2000, lr=0.5)),
    "ova-multilabel": ("reuters21578_modapte_train_slice.txt.gz", dict(loss="ova", wordNgrams=2, bucket=2000)),
    "hs": ("sst2_train_slice.txt.gz", dict(loss="hs", wordNgrams=2, bucket=2000, lr=0.5)),
    "charngrams-latin1": ("20newsgroups_train_latin1_slice.txt.gz", dict(minn=2, maxn=4, bucket=3000, lr=0.5)),
}


@pytest.fixture(scope="module")
def fasttext():
    return pytest.importorskip("fasttext")


def _train(directory, fixture, params):
    corpus = directory / "train.txt"
    corpus.write_bytes(gzip.decompress((FIXTURES / fixture).read_bytes()))
    env = dict(os.environ, MALLOC_PERTURB_="255")
    subprocess.run([sys.executable, "-c", _TRAIN, str(corpus), str(directory), json.dumps(params)], check=True,
                   env=env, timeout=300)
    return corpus


@pytest.fixture(scope="module")
def trained(fasttext, tmp_path_factory):
    """Case -> (directory holding model.bin and model.ftz, corpus, its lines as fastText's binding takes them)."""
    out = {}
    for name, (fixture, params) in CASES.items():
        d = tmp_path_factory.mktemp(name)
        corpus = _train(d, fixture, params)
        out[name] = (d, corpus, corpus.read_bytes().decode("utf-8", "replace").splitlines())
    return out


def _fasttext_predictions(m, line, k, threshold):
    return m.f.predict(line + "\n", k, threshold, "replace")


# Float for float, labels of equal probability in fastText's order: this needs the compiled
# float32 exp (NumPy's own exp, used without the JIT, differs in the last bit).
@pytest.mark.jit_only
@pytest.mark.parametrize("name", ["model.bin", "model.ftz"])
@pytest.mark.parametrize("case", list(CASES))
def test_predictions_equal_fasttexts(fasttext, trained, case, name):
    d, _, lines = trained[case]
    ours = fastembed.load_model(d / name)
    theirs = fasttext.load_model(str(d / name))
    assert isinstance(ours, FastTextModel) and ours.labels == theirs.labels
    for k, threshold in ((-1, 0.0), (1, 0.0), (3, 0.0), (2, 0.15)):
        batch = ours.predict(lines, k=k, threshold=threshold)
        for i, line in enumerate(lines):
            expected = _fasttext_predictions(theirs, line, k, threshold)
            labels, probs = batch[i]
            assert list(labels) == [label for _, label in expected], (i, k, threshold)
            np.testing.assert_allclose(probs, [p for p, _ in expected], rtol=0, atol=1e-5)
        for line in lines[:10]:  # one line at a time: the same
            labels, probs = ours.predict(line, k=k, threshold=threshold)
            assert list(labels) == [label for _, label in _fasttext_predictions(theirs, line, k, threshold)]


@pytest.mark.jit_only
@pytest.mark.parametrize("name", ["model.bin", "model.ftz"])
@pytest.mark.parametrize("case", list(CASES))
def test_test_and_vectors_equal_fasttexts(fasttext, trained, case, name):
    d, corpus, lines = trained[case]
    ours = fastembed.load_model(d / name)
    theirs = fasttext.load_model(str(d / name))
    for k in (1, 3):
        n, p, r = theirs.test(str(corpus), k)
        assert ours.test(corpus, k=k) == (n, pytest.approx(p, abs=1e-12), pytest.approx(r, abs=1e-12))
    for line in lines[:20]:
        np.testing.assert_allclose(ours.get_sentence_vector(line), theirs.get_sentence_vector(line),
                                   rtol=1e-6, atol=1e-7)
    for word in theirs.get_words(on_unicode_error="replace")[:50] + ["unseen-wordish", "xyzzy"]:
        np.testing.assert_allclose(ours.get_word_vector(word), theirs.get_word_vector(word), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["model.bin", "model.ftz"])
def test_single_lines_from_several_threads_equal_the_serial_calls(trained, name):
    """fastText's kernels release the GIL too: each thread has its own result arrays."""
    d, _, lines = trained["charngrams-latin1"]
    ours = fastembed.load_model(d / name)
    lines = lines[:40] + ["", "x " * 3000]
    expected = [ours.predict(line, k=3) for line in lines]
    order, results = results_from_threads(lambda line: ours.predict(line, k=3), lines, rounds=5)
    for indices, got in zip(order, results):
        for i, (labels, probs) in zip(indices, got):
            assert labels == expected[i][0]
            np.testing.assert_array_equal(probs, expected[i][1])
    vectors = [ours.get_sentence_vector(line) for line in lines]
    order, results = results_from_threads(ours.get_sentence_vector, lines, rounds=2)
    for indices, got in zip(order, results):
        for i, vec in zip(indices, got):
            np.testing.assert_array_equal(vec, vectors[i])


def test_cli_reads_fasttext_files(trained):
    d, corpus, lines = trained["hs"]
    env = dict(os.environ, PYTHONPATH=str(Path(fastembed.__file__).resolve().parents[1]))
    run = [sys.executable, "-m", "fastembed.cli"]
    info = subprocess.run(run + ["info", str(d / "model.ftz")], capture_output=True, text=True, env=env, check=True)
    assert "labels         2" in info.stdout and "loss=hs" in info.stdout
    test = subprocess.run(run + ["test", str(d / "model.ftz"), str(corpus)], capture_output=True, text=True,
                          env=env, check=True)
    n, p, _ = fastembed.load_model(d / "model.ftz").test(corpus)
    assert test.stdout.splitlines()[:2] == [f"N\t{n}", f"P@1\t{p:.3f}"]
    predict = subprocess.run(run + ["predict", str(d / "model.ftz"), "-", "-k", "2"], input="\n".join(lines[:5]),
                             capture_output=True, text=True, env=env, check=True)
    expected = [" ".join(labels) for labels, _ in fastembed.load_model(d / "model.ftz").predict(lines[:5], k=2)]
    assert predict.stdout.splitlines() == expected


def test_unsupervised_bin_gives_word_vectors_not_a_classifier(fasttext, tmp_path):
    corpus = _train(tmp_path, "sms_spam_train_slice.txt.gz", dict(unsupervised=True, minCount=2, bucket=1000))
    assert corpus.exists()
    with pytest.raises(ModelFileError, match="word vectors"):
        FastTextModel.load(tmp_path / "model.bin")
    vectors = fastembed.load_model(tmp_path / "model.bin")
    theirs = fasttext.load_model(str(tmp_path / "model.bin"))
    np.testing.assert_allclose(vectors.get_word_vector("free"), theirs.get_word_vector("free"), rtol=1e-5, atol=1e-6)


# -- writing -------------------------------------------------------------------------------------

EXPORT_CASES = {
    "softmax-bigram": ("trec6_train_slice.txt.gz", dict(word_ngrams=2, bucket=3000)),
    "ova": ("reuters21578_modapte_train_slice.txt.gz", dict(loss="ova", word_ngrams=2, bucket=3000)),
    "hs": ("trec6_train_slice.txt.gz", dict(loss="hs", bucket=3000)),
    "charngrams-latin1": ("20newsgroups_train_latin1_slice.txt.gz", dict(minn=2, maxn=4, bucket=3000,
                                                                          min_count_ngram=3)),
}


# As Python (NUMBA_DISABLE_JIT=1) NumPy's exp differs from the compiled one in the last bit, and
# the character n-gram model has labels of equal probability whose order that decides.
@pytest.mark.parametrize("case", [pytest.param(case, marks=pytest.mark.jit_only) if case == "charngrams-latin1"
                                  else case for case in EXPORT_CASES])
def test_fasttext_predicts_as_fastembed_on_an_exported_model(fasttext, tmp_path, case):
    fixture, params = EXPORT_CASES[case]
    corpus = tmp_path / "train.txt"
    corpus.write_bytes(gzip.decompress((FIXTURES / fixture).read_bytes()))
    model = fastembed.train_supervised(str(corpus), preset="fasttext", dim=16, epoch=10, lr=0.5, threads=1,
                                       verbose=0, **params)
    model.save_fasttext(tmp_path / "m.bin")
    theirs = fasttext.load_model(str(tmp_path / "m.bin"))
    assert theirs.labels == model.labels and theirs.get_words(on_unicode_error="replace") == [
        w.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for w in model.words]
    lines = corpus.read_bytes().decode("utf-8", "replace").splitlines()[:150]
    exact = fastembed.load_model(tmp_path / "m.bin")  # fastText's arithmetic, on the file
    agree = 0
    for line, (labels, probs), (e_labels, e_probs) in zip(lines, model.predict(lines, k=-1),
                                                          exact.predict(lines, k=-1)):
        expected = _fasttext_predictions(theirs, line, -1, 0.0)
        assert list(e_labels) == [label for _, label in expected]
        np.testing.assert_allclose(e_probs, [p for p, _ in expected], rtol=0, atol=1e-5)
        # fastembed's own model: fastText reports p + 1e-5 (hs: the product of p + 1e-5 along
        # the path, up to depth x 1e-5 more); ova's sigmoid is fastText's table of 512 steps on
        # [-8, 8] (0.008 at most between neighbours)
        theirs_p = dict((label, p - 1e-5) for p, label in expected)
        tolerance = {"ova": 8e-3, "hs": 1e-5 * len(model.labels)}.get(case, 1e-5)
        ours_p = dict(zip(labels, probs))
        for label, p in ours_p.items():
            assert abs(theirs_p.get(label, 0.0) - p) <= tolerance
        agree += labels[0] == expected[0][1]
    assert agree >= 0.97 * len(lines)  # the top label, up to near-ties within the tolerance


def test_export_refuses_what_fasttext_cannot_represent(tmp_path):
    corpus = tmp_path / "train.txt"
    corpus.write_bytes(gzip.decompress((FIXTURES / "trec6_train_slice.txt.gz").read_bytes()))
    model = fastembed.train_supervised(str(corpus), dim=8, epoch=1, threads=1, verbose=0)  # tf-idf pooling
    with pytest.raises(ArgumentError, match="tfidf.*no fastText equivalent"):
        model.save_fasttext(tmp_path / "m.bin")
    assert not (tmp_path / "m.bin").exists()
    model.save(tmp_path / "m.fe")
    # the user's process: compiled even in the NUMBA_DISABLE_JIT=1 coverage run (as Python, NumPy's
    # scalar overflow warnings of the hashing would come before the one error line)
    env = dict(os.environ, PYTHONPATH=str(Path(fastembed.__file__).resolve().parents[1]))
    env.pop("NUMBA_DISABLE_JIT", None)
    done = subprocess.run([sys.executable, "-m", "fastembed.cli", "export", str(tmp_path / "m.fe"), "-o",
                           str(tmp_path / "m.bin")], capture_output=True, text=True, env=env)
    assert done.returncode != 0 and done.stderr.startswith("fastembed: error: cannot write a fastText model")
    assert len(done.stderr.splitlines()) == 1


# -- without fastText: a hand-made pruned .ftz against fastText's rules in plain Python ------------

def _fnv(token: bytes) -> int:
    h = 2166136261
    for b in token:
        h = ((h ^ (b | 0xFFFFFF00 if b >= 128 else b)) * 16777619) & 0xFFFFFFFF
    return h


def _as_uint64_of_int32(h):
    return (h - 2**32 if h >= 2**31 else h) % 2**64


def test_pruned_ftz_follows_fasttexts_rules(tmp_path):
    """Words by id, ``</s>``, word bigrams hashed as fastText (int32 hashes sign-extended,
    ``h * 116049371 + next``), buckets through the pruned index and left out of the mean when
    absent; softmax reported as p + 1e-5."""
    from fastembed.fasttext import FastTextFile, write_fasttext
    from fastembed.quantize import QuantizedMatrix

    rng = np.random.default_rng(1)
    words = [b"</s>", b"the", b"caf\xc3\xa9", b"\xff\xfe", b"a"]
    labels = [b"__label__x", b"__label__y", b"__label__z"]
    args = dict(dim=4, ws=5, epoch=5, minCount=1, neg=5, wordNgrams=2, loss="softmax", model="sup",
                bucket=7, minn=0, maxn=0, lrUpdateRate=100, t=1e-4)
    pairs = np.array([[5, 1], [0, 0], [3, 2]], dtype=np.int32)
    inp = QuantizedMatrix(rng.normal(size=4 * 256).astype(np.float32), rng.integers(0, 256, (8, 2)).astype(np.uint8),
                          4, 2)
    out = rng.normal(size=(3, 4)).astype(np.float32)
    ft = FastTextFile(args, words + labels, np.array([9, 5, 3, 2, 1, 7, 4, 2], np.int64),
                      np.array([0] * 5 + [1] * 3, np.int8), 40, inp, out, 3, pairs)
    write_fasttext(tmp_path / "m.ftz", ft)
    model = fastembed.load_model(tmp_path / "m.ftz")
    assert isinstance(model, FastTextModel) and model.labels == ["__label__x", "__label__y", "__label__z"]
    table = inp.dense()
    bucket_row = {int(b): 5 + int(r) for b, r in pairs}
    for text in ["the café a", "a a zzz the", "__label__y \xff", "", "café"]:
        tokens = [t for t in text.encode("utf-8", "surrogateescape").split() if not t.startswith(b"__label__")]
        tokens.append(b"</s>")
        rows = [words.index(t) for t in tokens if t in words]
        hashes = [_as_uint64_of_int32(_fnv(t)) for t in tokens]
        for i in range(len(hashes) - 1):
            b = ((hashes[i] * 116049371 + hashes[i + 1]) % 2**64) % 7
            if b in bucket_row:
                rows.append(bucket_row[b])
        scores = out.astype(np.float64) @ table[rows].astype(np.float64).mean(axis=0)
        p = np.exp(scores - scores.max())
        p = p / p.sum() + 1e-5
        labels_got, probs = model.predict(text, k=-1)
        order = np.argsort(-p, kind="stable")
        assert list(labels_got) == [model.labels[i] for i in order]
        np.testing.assert_allclose(probs, p[order], rtol=1e-5)


def test_supervised_ns_loss_is_refused_by_name(tmp_path):
    from fastembed.fasttext import FastTextFile, write_fasttext

    args = dict(dim=2, ws=5, epoch=5, minCount=1, neg=5, wordNgrams=1, loss="ns", model="sup", bucket=0,
                minn=0, maxn=0, lrUpdateRate=100, t=1e-4)
    ft = FastTextFile(args, [b"</s>", b"__label__a"], np.array([3, 2], np.int64), np.array([0, 1], np.int8), 5,
                      np.ones((1, 2), np.float32), np.ones((1, 2), np.float32))
    write_fasttext(tmp_path / "ns.bin", ft)
    with pytest.raises(ModelFileError, match="loss 'ns' is not supported"):
        fastembed.load_model(tmp_path / "ns.bin")


# -- quantizing a fastText model: a .ftz fastText reads ----------------------------------------------

QUANTIZE_SETTINGS = [{}, {"cutoff": 300, "dsub": 3, "qnorm": True, "qout": True}, {"cutoff": 0}]


@pytest.mark.jit_only
@pytest.mark.parametrize("settings", QUANTIZE_SETTINGS, ids=["auto", "cutoff300-qnorm-qout", "all-rows"])
@pytest.mark.parametrize("case", list(CASES))
def test_quantized_fasttext_model_is_a_ftz_fasttext_predicts_from(fasttext, trained, tmp_path, case, settings):
    d, _, lines = trained[case]
    for source in ("model.bin", "model.ftz"):  # a .ftz is quantized again from its rows
        small, theirs, again = _quantized_and_read_back(fasttext, d / source, settings, tmp_path)
        for i, (labels, probs) in enumerate(again.predict(lines, k=-1)):
            expected = _fasttext_predictions(theirs, lines[i], -1, 0.0)
            assert list(labels) == [label for _, label in expected], i
            np.testing.assert_allclose(probs, [p for p, _ in expected], rtol=0, atol=1e-5)
        for (a_labels, a_probs), (s_labels, s_probs) in zip(again.predict(lines, k=2), small.predict(lines, k=2)):
            assert list(a_labels) == list(s_labels)
            np.testing.assert_array_equal(a_probs, s_probs)
    if settings.get("cutoff") == 300:
        small = fastembed.load_model(d / "model.bin").quantize(**settings)
        _assert_the_kept_rows_are_the_largest(d / "model.bin", small, 300, dsub=3, qnorm=True)
    if settings == {}:
        _assert_auto_fits(d / "model.bin", fastembed.load_model(d / "model.bin").quantize(), tmp_path)


def _quantized_and_read_back(fasttext, path, settings, tmp_path):
    """The model at ``path`` quantized, saved as small.ftz; and that file as fastText and as
    fastembed read it."""
    small = fastembed.load_model(path).quantize(**settings)
    assert isinstance(small, FastTextModel) and small.source.quantized
    small.save(tmp_path / "small.ftz")
    theirs = fasttext.load_model(str(tmp_path / "small.ftz"))
    assert theirs.is_quantized()
    return small, theirs, fastembed.load_model(tmp_path / "small.ftz")


def _assert_the_kept_rows_are_the_largest(bin_path, small, cutoff, **settings):
    """The kept rows are the .bin's rows of their word or bucket, quantized as fastembed.quantize
    does; every kept row (</s> aside) outweighs every dropped one."""
    from fastembed.fasttext.reading import read_fasttext
    from fastembed.quantize import importance, quantize_matrix

    big = read_fasttext(bin_path)
    ft = small.source
    assert ft.input_matrix.rows == cutoff and 0 < ft.nwords < big.nwords and b"</s>" in ft.words
    pairs = ft.pruneidx[np.argsort(ft.pruneidx[:, 1])]
    rows = [big.words.index(w) for w in ft.words] + (big.nwords + pairs[:, 0]).tolist()
    expected = quantize_matrix(big.input_matrix[rows], weights=importance(big.input_matrix[rows]), **settings)
    np.testing.assert_array_equal(ft.dense_input(), expected.dense())
    norms = np.linalg.norm(big.input_matrix, axis=1)
    eos = big.words.index(b"</s>")
    kept = norms[[r for r in rows if r != eos]]
    dropped = np.delete(norms, rows)
    assert kept.min() >= dropped.max()


def _assert_auto_fits(bin_path, small, tmp_path):
    """"auto": the .ftz fits in 1/10.5 of the .bin (when more than one row fits)."""
    small.save(tmp_path / "auto.ftz")
    assert small.train_stats["quantized_rows"] == 1 or (
        os.path.getsize(tmp_path / "auto.ftz") <= os.path.getsize(bin_path) / 10.5)


def _probabilities(labels_probs):
    return dict(zip(labels_probs[0], np.asarray(labels_probs[1], dtype=np.float64)))


@pytest.mark.parametrize("source", ["model.bin", "model.ftz"])
def test_a_small_quantized_fasttext_model_predicts_as_fasttext_reads_it(fasttext, trained, tmp_path, source):
    """The form of the test above that runs without the JIT in seconds: at most 256 rows per
    matrix (k-means then has nothing to do), 1 k-means pass for "auto", the first 100 lines; and
    each line's probabilities compared label by label (without the JIT, NumPy's exp may order
    labels of equal probability differently from fastText's)."""
    d, _, lines = trained["softmax-bigram"]
    small, theirs, again = _quantized_and_read_back(
        fasttext, d / source, dict(cutoff=200, dsub=2, qnorm=True, qout=True, niter=1), tmp_path)
    for line, ours in zip(lines[:100], again.predict(lines[:100], k=-1)):
        expected = {label: p for p, label in _fasttext_predictions(theirs, line, -1, 0.0)}
        got = _probabilities(ours)
        assert set(got) == set(expected), line
        np.testing.assert_allclose([got[label] for label in expected], list(expected.values()), rtol=0, atol=1e-5)
    if source == "model.bin":
        _assert_the_kept_rows_are_the_largest(d / source, small, 200, dsub=2, qnorm=True, niter=1)
        _assert_auto_fits(d / source, fastembed.load_model(d / source).quantize(niter=1), tmp_path)


def test_cli_quantizes_a_fasttext_bin(fasttext, trained, tmp_path):
    d, _, lines = trained["charngrams-latin1"]
    env = dict(os.environ, PYTHONPATH=str(Path(fastembed.__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-m", "fastembed.cli", "quantize", str(d / "model.bin"), "-o",
                           str(tmp_path / "small.ftz"), "--cutoff", "500"], capture_output=True, text=True, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "500 of" in done.stdout
    theirs = fasttext.load_model(str(tmp_path / "small.ftz"))
    ours = fastembed.load_model(tmp_path / "small.ftz")
    assert [list(labels) for labels, _ in ours.predict(lines[:50], k=1)] == [
        [label for _, label in _fasttext_predictions(theirs, line, 1, 0.0)] for line in lines[:50]]
