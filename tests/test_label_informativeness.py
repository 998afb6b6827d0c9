"""label_weighting: the supervised factor of the tf-idf idf, against its definition.

The reference (:func:`model_reference.label_divergence`) builds the row x label counts as dense
matrices and sums ``P ln(P / prior)``; fastembed counts a block of labels at a time and sums
only the non-zero counts.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastembed
from fastembed.model import label_informativeness as li
from model_reference import label_divergence, smoothed_idf

SMALL = dict(dim=8, epoch=1, threads=1, verbose=0, seed=1, pooling="tfidf")


def _csr(lists):
    offsets = np.zeros(len(lists) + 1, np.int64)
    np.cumsum([len(x) for x in lists], out=offsets[1:])
    flat = np.concatenate([np.asarray(x, np.int32) for x in lists]) if lists else np.zeros(0, np.int32)
    return flat.astype(np.int32), offsets


def _divergence(bags, label_lists, n_rows, n_labels, dim, min_block_bytes):
    indices, offsets = _csr(bags)
    label_indices, label_offsets = _csr(label_lists)
    line_counts = li.label_line_counts(label_indices, label_offsets, n_labels)
    pieces = lambda: [(indices, offsets, label_indices, label_offsets)]  # noqa: E731
    return li.row_divergence(li.corpus_block_counts(pieces, n_rows), line_counts, n_rows, dim,
                             min_block_bytes)


@st.composite
def corpora(draw):
    n_rows = draw(st.integers(1, 12))
    n_labels = draw(st.integers(1, 9))
    n_bags = draw(st.integers(1, 25))
    bags = [draw(st.lists(st.integers(0, n_rows - 1), max_size=8)) for _ in range(n_bags)]
    # repeats and several labels per line; label n_labels - 1 may be held by no line
    labels = [draw(st.lists(st.integers(0, n_labels - 1), min_size=1, max_size=3)) for _ in range(n_bags)]
    return bags, labels, n_rows, n_labels


@settings(max_examples=60, deadline=None)
@given(corpora(), st.integers(1, 7))
def test_label_line_counts_and_multi_label_lines_whatever_the_chunks(corpus, chunk):
    """Lines holding each label (a label twice in a line once), and whether a line holds two,
    read a few lines at a time: the same as the definition over the whole list of lines."""
    from fastembed.text import encoded
    from fastembed.text.encoded import EncodedCorpus

    _, labels, _, n_labels = corpus
    label_indices, label_offsets = _csr(labels)
    expected = np.zeros(n_labels, np.int64)
    for line in labels:
        expected[sorted(set(line))] += 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(li, "PER_LINE_CHUNK", chunk)
        patch.setattr(encoded, "PER_LINE_CHUNK", chunk)
        np.testing.assert_array_equal(li.label_line_counts(label_indices, label_offsets, n_labels), expected)
        empty = np.zeros(0, np.int32)
        c = EncodedCorpus(empty, np.zeros(len(labels) + 1, np.int64), label_indices, label_offsets, empty)
        assert c.has_multi_label_line() == any(len(line) > 1 for line in labels)


@settings(max_examples=60, deadline=None)
@given(corpora(), st.sampled_from([4, 8, 100]))
def test_divergence_equals_its_definition_whatever_the_blocks(corpus, dim):
    """With no floor on the counts table (int32), dim 4 makes blocks of one label, dim 8 of two."""
    bags, labels, n_rows, n_labels = corpus
    got, seen = _divergence(bags, labels, n_rows, n_labels, dim, min_block_bytes=0)
    expected = label_divergence(bags, labels, n_rows, n_labels, li.PSEUDO_COUNT)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    in_a_bag = np.zeros(n_rows, bool)
    for rows in bags:
        in_a_bag[rows] = True
    np.testing.assert_array_equal(seen, in_a_bag)


def test_label_blocks_cover_the_labels_within_the_budget():
    for n_rows, n_labels, dim in [(10**6, 1000, 100), (10**6, 3, 100), (50, 7, 8), (2 * 10**6, 90, 10)]:
        for itemsize in (4, 8):
            blocks = li.label_blocks(n_rows, n_labels, dim, itemsize, min_block_bytes=0)
            assert blocks[0][0] == 0 and blocks[-1][1] == n_labels
            assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
            budget = n_rows * dim
            assert all(itemsize * n_rows * (stop - first) <= budget or stop - first == 1
                       for first, stop in blocks)


def test_counts_are_int32_unless_a_label_could_overflow_it():
    assert li.count_dtype(np.array([3, 2**31 - 1])) == np.int32
    assert li.count_dtype(np.array([3, 2**31])) == np.int64
    counts = np.zeros((1, 3), np.int64)  # the int64 variant counts as the int32 one does
    li.label_row_counts(np.array([0, 2, 2, 1], np.int32), np.array([0, 3, 4]), np.array([0, 0], np.int32),
                        np.array([0, 1, 2]), 0, counts)
    assert counts.tolist() == [[1, 1, 1]]


def test_a_row_that_points_at_one_label_weighs_more():
    lines = ["__label__a the cat sat", "__label__b the dog ran", "__label__a the cat ran",
             "__label__b the dog sat"] * 10
    model = fastembed.train_supervised(lines, word_ngrams=1, label_weighting=2.0, **SMALL)
    plain = fastembed.train_supervised(lines, word_ngrams=1, label_weighting=0.0, **SMALL)
    factor = model.idf[:-1] / plain.idf[:-1]
    row = model.dictionary.get_word_id
    # "the" is in every line, "sat" and "ran" as often under both labels: no information
    for word in ("the", "sat", "ran"):
        assert factor[row(word)] == pytest.approx(1.0, abs=1e-6)
    # "cat" and "dog" each name a label: KL = ln 2 shrunk by the pseudo-count, times 2
    assert factor[row("cat")] == pytest.approx(factor[row("dog")])
    assert 1.5 < factor[row("cat")] < 1.0 + 2 * np.log(2)


def _bags_and_labels(model, source):
    corpus = model.dictionary.encode(source)
    bags = [corpus.indices[a:b] for a, b in zip(corpus.offsets[:-1], corpus.offsets[1:])]
    labels = [corpus.label_indices[a:b] for a, b in zip(corpus.label_offsets[:-1], corpus.label_offsets[1:])]
    return bags, labels


@pytest.mark.parametrize("strength", [0.0, 0.5, 2.0])
def test_model_idf_is_the_smoothed_idf_times_the_label_factor(trec_train, strength):
    model = fastembed.train_supervised(str(trec_train), label_weighting=strength, **SMALL)
    bags, labels = _bags_and_labels(model, str(trec_train))
    n_rows = model.input_matrix.shape[0]
    expected = smoothed_idf(bags, n_rows) * (
        1 + strength * label_divergence(bags, labels, n_rows, model.dictionary.nlabels, li.PSEUDO_COUNT))
    expected[-1] = 0.0  # the unseen-bucket row
    np.testing.assert_allclose(model.idf, expected, rtol=2e-6)


@pytest.mark.slow_without_jit
def test_out_of_core_training_gets_the_in_memory_idf(trec_train, tmp_path):
    in_memory = fastembed.train_supervised(str(trec_train), **SMALL)
    mapped = fastembed.train_supervised(str(trec_train), cache_dir=str(tmp_path / "cache"), **SMALL)
    assert in_memory.args.label_weighting == 2.0  # the default preset's
    np.testing.assert_array_equal(mapped.idf, in_memory.idf)


def test_continued_training_takes_each_rows_factor_from_the_corpus_that_holds_it(trec_train, tmp_path):
    lines = trec_train.read_text(encoding="utf-8").splitlines()
    first, second = lines[:1000], lines[1000:]
    base = fastembed.train_supervised(first, word_ngrams=1, label_weighting=2.0, **SMALL)
    model = fastembed.train_supervised(second, init_model=base, verbose=0)
    n_rows = model.input_matrix.shape[0]
    # the plain idf of both corpora, as continued training counts documents
    first_bags, _ = _bags_and_labels(model, first)
    second_bags, second_labels = _bags_and_labels(model, second)
    plain = smoothed_idf(first_bags + second_bags, n_rows)
    second_factor = 1 + 2.0 * label_divergence(second_bags, second_labels, n_rows,
                                               model.dictionary.nlabels, li.PSEUDO_COUNT)
    in_second = np.zeros(n_rows, bool)
    for rows in second_bags:
        in_second[rows] = True
    factor = model.idf[:-1] / plain[:-1]
    np.testing.assert_allclose(factor[in_second[:-1]], second_factor[:-1][in_second[:-1]], rtol=1e-5)
    # a word of the first half only keeps the factor it had in the base model
    only_first = [w for w in base.words if w not in {t for line in second for t in line.split()}]
    assert only_first
    base_plain = smoothed_idf(_bags_and_labels(base, first)[0], base.input_matrix.shape[0])
    for word in only_first[:20]:
        old = base.idf[base.dictionary.get_word_id(word)] / base_plain[base.dictionary.get_word_id(word)]
        assert factor[model.dictionary.get_word_id(word)] == pytest.approx(old, rel=1e-5)
