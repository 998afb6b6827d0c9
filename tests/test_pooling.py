"""Pooling weights against independent computations, and what they buy on long documents."""

import numpy as np
import pytest

import fastembed
from fastembed.kernels import embedding_bag
from fastembed.model.pooling import bag_weights, document_frequency, smooth_idf
from fastembed.text import build_corpus

from conftest import FIXTURES  # noqa: E402

DOCS = [
    "__label__a the cat sat on the mat the end",
    "__label__b a dog ate the bone",
    "__label__a the cat ate",
    "__label__b dogs and cats and dogs",
]


@pytest.fixture(scope="module")
def tiny():
    dictionary, corpus = build_corpus([d for d in DOCS])
    return dictionary, corpus


def _dense(dictionary, corpus, per_index):
    """(n_docs, n_words) matrix: each row's weights summed per word."""
    out = np.zeros((corpus.n_lines, dictionary.nwords))
    for b in range(corpus.n_lines):
        for i in range(corpus.offsets[b], corpus.offsets[b + 1]):
            out[b, corpus.indices[i]] += per_index[i]
    return out


def _tokens(doc):
    return [t for t in doc.split() if not t.startswith("__label__")] + ["</s>"]


def test_idf_by_hand(tiny):
    dictionary, corpus = tiny
    df = document_frequency(corpus.indices, corpus.offsets, dictionary.nwords)
    for word in ["the", "cat", "dogs", "</s>", "bone"]:
        expected_df = sum(word in _tokens(d) for d in DOCS)
        assert df[dictionary.get_word_id(word)] == expected_df
    idf = smooth_idf(df, len(DOCS))
    assert idf[dictionary.get_word_id("bone")] == pytest.approx(np.log(5 / 2) + 1)
    assert idf[dictionary.get_word_id("</s>")] == pytest.approx(1.0)


def test_tfidf_weights_equal_scikit_learn(tiny):
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    dictionary, corpus = tiny
    vec = sklearn_text.TfidfVectorizer(sublinear_tf=True, smooth_idf=True, tokenizer=str.split,
                                       token_pattern=None, lowercase=False)
    expected = vec.fit_transform([" ".join(_tokens(d)) for d in DOCS]).toarray()
    df = document_frequency(corpus.indices, corpus.offsets, dictionary.nwords)
    idf = smooth_idf(df, corpus.n_lines)
    cols = [vec.vocabulary_[w] for w in dictionary.words]
    np.testing.assert_allclose(idf, vec.idf_[cols], rtol=1e-6)
    weights = bag_weights("tfidf", corpus.indices, corpus.offsets, idf)
    np.testing.assert_allclose(_dense(dictionary, corpus, weights), expected[:, cols], rtol=1e-6)


def test_tfidf_weights_by_hand(tiny):
    dictionary, corpus = tiny
    n = len(DOCS)
    df = {w: sum(w in _tokens(d) for d in DOCS) for d in DOCS for w in _tokens(d)}
    idf = smooth_idf(document_frequency(corpus.indices, corpus.offsets, dictionary.nwords), n)
    weights = _dense(dictionary, corpus, bag_weights("tfidf", corpus.indices, corpus.offsets, idf))
    for b, doc in enumerate(DOCS):
        toks = _tokens(doc)
        raw = {w: (1 + np.log(toks.count(w))) * (np.log((1 + n) / (1 + df[w])) + 1) for w in toks}
        norm = np.sqrt(sum(v * v for v in raw.values()))
        for w, v in raw.items():
            assert weights[b, dictionary.get_word_id(w)] == pytest.approx(v / norm, rel=1e-6)


def test_sqrt_and_mean_weights(tiny):
    _, corpus = tiny
    sizes = np.diff(corpus.offsets)
    w = bag_weights("sqrt", corpus.indices, corpus.offsets)
    np.testing.assert_allclose(w, np.repeat(1 / np.sqrt(sizes), sizes), rtol=1e-6)
    assert bag_weights("mean", corpus.indices, corpus.offsets).size == 0


@pytest.mark.parametrize("pooling", ["mean", "sqrt", "tfidf"])
def test_sentence_vector_is_the_weighted_embedding_bag(pooling, trec_train):
    m = fastembed.train_supervised(str(trec_train), pooling=pooling, epoch=1, dim=8,
                                   threads=1, verbose=0)
    text = "What is the capital of the capital ?"
    bags = m._encode([text])
    if pooling == "mean":
        expected = embedding_bag(m.input_matrix, bags.indices, bags.offsets, "mean")[0]
    else:
        w = m._weights(bags)
        expected = embedding_bag(m.input_matrix, bags.indices, bags.offsets, "sum",
                                 per_sample_weights=w)[0]
    np.testing.assert_allclose(m.get_sentence_vector(text), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.slow_without_jit
def test_defaults_beat_the_fasttext_preset_on_long_documents():
    """fastText's defaults collapse on 20 Newsgroups (mean pooling of long documents)."""
    train = FIXTURES / "20newsgroups_train_head1200.txt.gz"
    test = FIXTURES / "20newsgroups_test_head400.txt.gz"
    kw = dict(threads=1, seed=0, verbose=0)
    default = fastembed.train_supervised(str(train), **kw).test(str(test))[1]
    compat = fastembed.train_supervised(str(train), preset="fasttext", **kw).test(str(test))[1]
    assert default > compat + 0.2, (default, compat)


def test_tfidf_weights_of_long_bags_equal_numpy():
    """Bags whose rows repeat up to past the kernel's 1 + ln(tf) table (256), against a plain
    NumPy computation of the same formula, float64 then float32 as the kernel stores it."""
    rng = np.random.default_rng(3)
    n_rows = 40
    bags = [rng.integers(0, n_rows, size=m) for m in (1, 7, 300)]
    bags.append(np.concatenate([np.full(255, 5), np.full(256, 6), np.full(257, 7), [8]]))
    indices = np.concatenate(bags).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum([b.size for b in bags])]).astype(np.int64)
    idf = rng.uniform(1.0, 4.0, n_rows).astype(np.float32)
    got = bag_weights("tfidf", indices, offsets, idf)
    for b, bag in enumerate(bags):
        tf = np.bincount(bag, minlength=n_rows)[bag]
        w = (1.0 + np.log(tf)) * idf[bag].astype(np.float64)
        share = w / tf
        norm = np.sqrt(np.sum(w * w / tf))
        np.testing.assert_allclose(got[offsets[b]:offsets[b + 1]], share / norm, rtol=1e-6)
