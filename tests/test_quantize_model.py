"""Model.quantize (fastembed.model.quantized) and ``fastembed quantize``: pruning, product
quantization, the quantized .fe file, against a NumPy reference on a real TREC slice."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from model_reference import bag_weights, label_probs

import fastembed
from fastembed.cli import main
from fastembed.errors import ArgumentError


@pytest.fixture(scope="module")
def model(trec_train):
    """tf-idf pooling, word bigrams and character n-grams: words and buckets compete in pruning."""
    return fastembed.train_supervised(str(trec_train), dim=8, epoch=2, word_ngrams=2, minn=3, maxn=4,
                                      bucket=20_000, threads=1, verbose=0)


def _lines(trec_test, n=200):
    return trec_test.read_text().splitlines()[:n]


def test_pruning_keeps_the_rows_of_largest_norm(model):
    """The rows kept are the ``cutoff`` of largest L2 norm (``</s>`` always), found with NumPy."""
    d = model.dictionary
    rows = model.input_matrix[:d.unseen_row].astype(np.float64)
    cutoff = 300
    eos = d.get_word_id("</s>")
    order = [eos] + [r for r in np.argsort(-np.linalg.norm(rows, axis=1), kind="stable") if r != eos]
    kept = set(order[:cutoff])
    q = model.quantize(cutoff=cutoff, niter=2)
    assert q.dictionary.word_bytes == [w for i, w in enumerate(d.word_bytes) if i in kept]
    assert sorted(q.bucket_ids.tolist()) == sorted(
        int(model.bucket_ids[r - d.nwords]) for r in kept if r >= d.nwords)
    assert q.input_matrix.shape == (cutoff + 1, model.dim) and not q.input_matrix[-1].any()
    assert q.train_stats["quantized_rows"] == cutoff


@pytest.mark.parametrize("pooling, loss", [("tfidf", "softmax"), ("mean", "hs")])
def test_small_tables_predict_as_the_pruned_reference(trec_train, trec_test, pooling, loss):
    """At most 256 rows kept: product quantization is exact (a centroid a row), so the quantized
    model must predict as the original with a pruned word left out of a line (unknown) and a
    pruned bucket reading the zero row, computed in float64 NumPy from the original tables."""
    m = fastembed.train_supervised(str(trec_train), dim=8, epoch=2, word_ngrams=2, bucket=20_000, threads=1,
                                   verbose=0, pooling=pooling, loss=loss)
    q = m.quantize(cutoff=200)
    d = m.dictionary
    np.testing.assert_array_equal(q.input_matrix[:q.dictionary.nwords],
                                  m.input_matrix[[d.get_word_id(w) for w in q.dictionary.word_bytes]])
    kept_words = {d.get_word_id(w) for w in q.dictionary.word_bytes}
    kept_buckets = {int(b) for b in q.bucket_ids}
    lines = _lines(trec_test)
    bags = m._encode(lines)
    table = m.input_matrix.astype(np.float64)
    paths = None
    if loss == "hs":
        from model_reference import huffman_paths
        paths = huffman_paths(d.label_counts)
    predictions = q.predict(lines, k=-1)
    for i, (labels, probs) in enumerate(predictions):
        bag = bags.indices[bags.offsets[i]:bags.offsets[i + 1]].astype(np.int64)
        mapped = []
        for r in bag.tolist():
            if r < d.nwords:
                if r in kept_words:
                    mapped.append(r)
            elif r < d.unseen_row and int(m.bucket_ids[r - d.nwords]) in kept_buckets:
                mapped.append(r)
            else:
                mapped.append(d.unseen_row)
        mapped = np.array(mapped, np.int64)
        w = bag_weights(mapped, pooling, m.idf)
        hidden = (w[:, None] * table[mapped]).sum(axis=0) if mapped.size else np.zeros(m.dim)
        expected = label_probs(m.output_matrix, hidden, loss, paths)
        got = dict(zip(labels, probs))
        np.testing.assert_allclose([got[label] for label in m.labels], expected, rtol=2e-5, atol=1e-6)


def test_quantized_file_round_trip(model, trec_test, tmp_path):
    q = model.quantize(cutoff=0.5, qnorm=True, qout=True, niter=5)
    q.save(tmp_path / "q.fe")
    model.save(tmp_path / "m.fe")
    loaded = fastembed.load_model(tmp_path / "q.fe")
    assert (tmp_path / "q.fe").stat().st_size * 3 < (tmp_path / "m.fe").stat().st_size
    np.testing.assert_array_equal(loaded.input_matrix, q.input_matrix)
    np.testing.assert_array_equal(loaded.output_matrix, q.output_matrix)
    assert loaded.quantization.meta() == {"dsub": 4, "qnorm": True, "qout": True}  # the default dsub
    lines = _lines(trec_test)
    for (a, pa), (b, pb) in zip(q.predict(lines, k=3), loaded.predict(lines, k=3)):
        assert a == b
        np.testing.assert_array_equal(pa, pb)
    assert loaded.test(trec_test) == q.test(trec_test)
    # rows rebuilt from the codes, as QuantizedMatrix.dense (norm * centroid) gives them
    np.testing.assert_array_equal(loaded.input_matrix[:-1], loaded.quantization.input_codes.dense())
    # a quantized model whose matrix was replaced is saved as floats
    loaded.input_matrix = loaded.input_matrix.copy()
    loaded.save(tmp_path / "floats.fe")
    assert fastembed.load_model(tmp_path / "floats.fe").quantization is None


@pytest.mark.parametrize("settings", [{}, {"qnorm": True, "qout": True}, {"dsub": 3}])
def test_auto_cutoff_makes_a_file_at_least_10x_smaller(model, tmp_path, settings):
    """cutoff="auto" keeps the most rows that fit in 1/10.5 of the float file: the file is at
    least 10x smaller, and one more row would not have fitted by much. The float file is the
    model's prediction arrays: without the optimizer sums continued training needs (format
    version 2 writes them too; a quantized model holds none)."""
    import copy

    floats = copy.copy(model)
    floats.optimizer_state = None
    assert not floats.continuable
    floats.save(tmp_path / "m.fe")
    q = model.quantize(niter=2, **settings)
    q.save(tmp_path / "q.fe")
    ratio = (tmp_path / "m.fe").stat().st_size / (tmp_path / "q.fe").stat().st_size
    assert 10.0 <= ratio < 11.5, ratio


def test_quantize_keeps_most_of_the_accuracy(model, trec_test):
    """Not a target (that is scripts/bench_quantize.py on the full datasets): a sanity bound."""
    _, p_full, _ = model.test(trec_test)
    _, p_small, _ = model.quantize(niter=5).test(trec_test)
    assert p_small > p_full - 0.05


@pytest.mark.parametrize("settings, fragment", [
    (dict(cutoff=-1), "cutoff"), (dict(cutoff=1.5), "cutoff"), (dict(cutoff="x"), "cutoff"),
    (dict(cutoff=True), "cutoff"), (dict(cutoff="all"), "cutoff"), (dict(dsub=0), "dsub"),
    (dict(dsub=9), "dsub")])
def test_bad_settings_are_refused(model, settings, fragment):
    with pytest.raises(ArgumentError, match=fragment):
        model.quantize(**settings)


def test_cli_quantize(model, trec_test, tmp_path):
    model.save(tmp_path / "m.fe")
    runner = CliRunner()
    done = runner.invoke(main, ["quantize", str(tmp_path / "m.fe"), "-o", str(tmp_path / "q.fe"), "--cutoff",
                                "400", "--dsub", "4"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "x smaller" in done.output and "400 of" in done.output
    q = fastembed.load_model(tmp_path / "q.fe")
    assert q.input_matrix.shape[0] == 401 and q.quantization.dsub == 4
    bad = runner.invoke(main, ["quantize", str(tmp_path / "m.fe"), "-o", str(tmp_path / "q2.fe"), "--cutoff", "2.5"])
    assert bad.exit_code == 1 and bad.stderr.startswith("fastembed: error: quantize: cutoff")
    same = runner.invoke(main, ["quantize", str(tmp_path / "m.fe"), "-o", str(tmp_path / "m.fe")])
    assert same.exit_code == 2 and not (tmp_path / "q2.fe").exists()
