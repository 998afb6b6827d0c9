"""Word vectors (fastembed.wordvec): kernels against a plain NumPy model, sampling against its
formulas, n-gram hashing and model files against fastText, and a small real-corpus run.

The NumPy reference (:func:`reference_train`) re-implements, from the formulas of
``fastembed/wordvec/kernels.py``'s docstring, the subsampling, windows, negative draws and
updates of skipgram and cbow, and replays the same splitmix64 random stream in Python integers.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastembed
from fastembed.cli import main
from fastembed.errors import ArgumentError, CorpusError, ModelFileError, TrainingDiverged
from fastembed.jit import SERIAL, njit
from fastembed.model.rng import splitmix64
from fastembed.model.workers import LOSS_SUM, SEEN, TOKENS, Workers
from fastembed.settings import SETTINGS, UNSUPERVISED_SETTINGS, UnsupervisedArgs
from fastembed.wordvec import WordVectors, train_unsupervised
from fastembed.wordvec.corpus import (build_vocabulary, keep_probabilities, subword_rows,
                                      vocabulary_subwords)
from fastembed.wordvec.kernels import (CBOW, MAX_PIECE, SKIPGRAM, alias_table, draw_negative,
                                       train_lines)
from fastembed.wordvec.vectors import char_ngrams

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MASK = (1 << 64) - 1


# -- the NumPy reference -----------------------------------------------------------------------

class Stream:
    """splitmix64 in Python integers."""

    def __init__(self, state):
        self.state = int(state)

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def ref_uniform(z):
    return np.float32((z >> 40) / 2.0**24)


def ref_negative(prob, index, z):
    slot = ((z >> 32) * prob.size) >> 32
    return slot if np.float32((z & 0xFFFFFF) / 2.0**24) < prob[slot] else int(index[slot])


def ref_negatives(rng, target, neg, prob, index):
    out = []
    for _ in range(neg):
        for _try in range(64):
            k = ref_negative(prob, index, rng.next())
            if k != target:
                out.append(k)
                break
    return out


def ref_targets(out, hidden, target, negatives, lr):
    """fastText's binary logistic units: the gradient w.r.t. hidden; out updated in place."""
    grad = np.zeros_like(hidden)
    loss = 0.0
    for row, label in [(target, 1.0)] + [(k, 0.0) for k in negatives]:
        p = 1.0 / (1.0 + math.exp(-float(out[row] @ hidden)))
        grad += (p - label) * out[row]
        out[row] -= lr * (p - label) * hidden
        loss += -math.log((p if label else 1.0 - p) + 1e-5)
    return grad, loss


def reference_train(kind, inp, out, sub_offsets, sub_rows, tokens, line_offsets, keep_prob,
                    prob, index, ws, neg, lr0, total, seed):
    """Lines trained in order by one thread, in float64; returns (loss, targets, tokens)."""
    inp, out = inp.astype(np.float64), out.astype(np.float64)
    rng = Stream(seed)
    done = 0
    loss_sum = 0.0
    pairs = 0
    for line in range(line_offsets.size - 1):
        for p in range(line_offsets[line], line_offsets[line + 1], MAX_PIECE):
            if done >= total:  # fastText's keepTraining: the budget is spent
                return inp, out, loss_sum, pairs, done
            q = min(p + MAX_PIECE, line_offsets[line + 1])
            lr = lr0 * (1.0 - done / total)
            piece = [w for w in tokens[p:q] if ref_uniform(rng.next()) < keep_prob[w]]
            done += q - p
            m = len(piece)
            for i in range(m):
                b = 1 + rng.next() % ws
                lo, hi = max(0, i - b), min(m, i + b + 1)
                if hi - lo < 2:
                    continue
                context = [c for c in range(lo, hi) if c != i]
                rows_of = [sub_rows[sub_offsets[w]:sub_offsets[w + 1]] for w in piece]
                if kind == SKIPGRAM:  # fastText's order: the center's rows move per target
                    negs = [ref_negatives(rng, piece[c], neg, prob, index) for c in context]
                    updates = [(rows_of[i], piece[c], ns) for c, ns in zip(context, negs)]
                else:
                    negs = ref_negatives(rng, piece[i], neg, prob, index)
                    updates = [(np.concatenate([rows_of[c] for c in context]), piece[i], negs)]
                for rows, target, ns in updates:
                    grad, l = ref_targets(out, inp[rows].mean(axis=0), target, ns, lr)
                    loss_sum += l
                    pairs += 1
                    for r in rows:  # every occurrence, unscaled: fastText's word-vector update
                        inp[r] -= lr * grad
    return inp, out, loss_sum, pairs, done


def tiny_problem(seed, n_words=9, dim=6, n_extra_rows=7):
    rng = np.random.default_rng(seed)
    counts = np.sort(rng.integers(1, 50, n_words))[::-1]
    lengths = rng.integers(1, 5, n_words)
    lengths[0] = 3
    sub_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    sub_rows = np.concatenate([[w] + list(rng.integers(n_words, n_words + n_extra_rows, n - 1))
                               for w, n in enumerate(lengths)]).astype(np.int32)
    sub_rows[1:3] = n_words  # word 0's two n-grams share a bucket: its rows are 0, n, n
    inp = rng.uniform(-0.5, 0.5, (n_words + n_extra_rows, dim)).astype(np.float32)
    out = rng.uniform(-0.5, 0.5, (n_words, dim)).astype(np.float32)
    line_lengths = [7, 1, 0, MAX_PIECE + 30, 12]  # a line longer than a piece, a blank one
    tokens = rng.integers(0, n_words, sum(line_lengths)).astype(np.int32)
    line_offsets = np.concatenate([[0], np.cumsum(line_lengths)]).astype(np.int64)
    keep = rng.uniform(0.3, 1.2, n_words).astype(np.float32)
    prob, index = alias_table(counts.astype(np.float64) ** 0.5)
    return inp, out, sub_offsets, sub_rows, tokens, line_offsets, keep, prob, index


@pytest.mark.parametrize("kind", [SKIPGRAM, CBOW], ids=["skipgram", "cbow"])
@pytest.mark.parametrize("seed, budget", [(0, 2.0), (1, 2.0), (2, 0.6)])
def test_training_steps_equal_the_numpy_reference(kind, seed, budget):
    """``budget``: the token budget over the tokens given; below 1 the kernel stops in the
    long line, at the first piece boundary that reaches it."""
    inp, out, sub_offsets, sub_rows, tokens, line_offsets, keep, prob, index = tiny_problem(seed)
    ws, neg, lr0, state = 3, 4, 0.2, 12345 + seed
    total = float(tokens.size * budget)
    r_inp, r_out, r_loss, r_pairs, r_tokens = reference_train(
        kind, inp, out, sub_offsets, sub_rows, tokens, line_offsets, keep, prob, index, ws, neg,
        lr0, total, state)
    workers = Workers(1)
    rng_states = np.array([state], dtype=np.uint64)
    dim = inp.shape[1]
    unspent = train_lines(kind, inp, out, sub_offsets, sub_rows, tokens, line_offsets, 0,
                          line_offsets.size - 1, keep, prob, index, ws, neg, lr0, total, 0,
                          workers.counters, workers.losses, rng_states,
                          np.zeros(MAX_PIECE, np.int32), np.zeros((2, 2 * ws * neg), np.int32),
                          np.zeros(dim, np.float32), np.zeros(dim, np.float32),
                          np.zeros(dim, np.float32))
    assert unspent == (budget > 1.0)
    assert r_pairs > 100
    assert workers.counters[0, SEEN] == r_pairs
    assert workers.counters[0, TOKENS] == r_tokens
    if budget > 1.0:
        assert r_tokens == tokens.size
    else:  # stopped at the first piece boundary at or past the budget, inside the long line
        assert total <= r_tokens < total + MAX_PIECE and r_tokens < tokens.size
    np.testing.assert_allclose(workers.losses[0, LOSS_SUM], r_loss, rtol=1e-4)
    np.testing.assert_allclose(out, r_out, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(inp, r_inp, rtol=1e-3, atol=1e-4)
    assert not np.allclose(inp, tiny_problem(seed)[0], atol=1e-3)  # training moved the rows



@pytest.mark.parametrize("threads", [1, 2])
def test_training_budget_is_fasttexts(small_corpus, threads):
    """fastText trains known tokens until they reach epoch x all tokens (whitespace tokens plus
    one end of line per line, counted here from the bytes): with min_count 3 a third of this
    corpus's tokens are unknown, so 2 epochs are more than 2 passes, the last one partial."""
    data = small_corpus.read_bytes()
    all_tokens = sum(len(line.split()) + 1 for line in data.splitlines())
    m = train_unsupervised(str(small_corpus), dim=8, epoch=2, min_count=3, threads=threads,
                           verbose=0)
    stats = m.train_stats
    assert stats["corpus_tokens"] == all_tokens
    assert stats["tokens"] < 0.8 * all_tokens  # unknown words: the passes are not the epochs
    budget = 2 * all_tokens
    assert budget <= stats["tokens_trained"] < budget + threads * MAX_PIECE
    assert stats["tokens_trained"] > 2.5 * stats["tokens"]

def test_each_pass_visits_every_chunk_once_in_a_new_random_order(small_corpus, monkeypatch):
    """Passes in corpus order trained the benchmark corpus's parts (IMDB, then 20 Newsgroups)
    one after the other, and the parts did not add up (the comment above training._MIN_CHUNKS_PER_THREAD). Here the
    kernel is replaced by a recorder of the lines it is given (adding their tokens to the
    budget counter as the kernel does): every full pass covers every line exactly once, in an
    order of chunks that is not the corpus order and changes from pass to pass."""
    from fastembed.wordvec import training

    calls = []

    def recorder(kind, inp, out, sub_offsets, sub_rows, tokens, line_offsets, start, stop,
                 *rest):
        total, thread, counters = rest[6], rest[7], rest[8]
        calls.append((start, stop))
        counters[thread, TOKENS] += line_offsets[stop] - line_offsets[start]
        return counters[:, TOKENS].sum() < total

    monkeypatch.setattr(training, "train_lines", recorder)
    monkeypatch.setattr(training, "_CHUNK_TOKENS", 600)  # ~2 lines a chunk: many chunks
    m = train_unsupervised(str(small_corpus), dim=4, epoch=3, min_count=3, threads=1, verbose=0)
    n_lines = m.train_stats["lines"]
    starts = [a for a, _ in calls]
    chunks = sorted(set(calls))
    assert len(chunks) > 10 and chunks[0][0] == 0 and chunks[-1][1] == n_lines
    assert all(chunks[i][1] == chunks[i + 1][0] for i in range(len(chunks) - 1))  # a tiling
    passes = [starts[i:i + len(chunks)] for i in range(0, len(starts), len(chunks))]
    assert len(passes) == m.train_stats["tokens_trained"] // m.train_stats["tokens"] + 1
    for order in passes[:-1]:  # the full passes
        assert sorted(order) == [a for a, _ in chunks]
        assert order != sorted(order)
    assert passes[0] != passes[1]


# -- sampling against its formulas ---------------------------------------------------------------

def implied_distribution(prob, index):
    """The distribution an alias table draws from: slot i gives i w.p. prob[i], else index[i]."""
    n = prob.size
    p = prob.astype(np.float64) / n
    np.add.at(p, index, (1.0 - prob.astype(np.float64)) / n)
    return p


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("power", [0.5, 0.75])
def test_alias_table_is_the_unigram_distribution_to_a_power(seed, power):
    counts = np.random.default_rng(seed).zipf(1.3, 5000).astype(np.float64)
    prob, index = alias_table(counts ** power)
    expected = counts ** power / (counts ** power).sum()
    np.testing.assert_allclose(implied_distribution(prob, index), expected, rtol=1e-5, atol=1e-12)


@njit(**SERIAL)
def _draw_many(prob, index, n, seed):
    counts = np.zeros(prob.size, dtype=np.int64)
    state = np.uint64(seed)
    for _ in range(n):
        state, z = splitmix64(state)
        counts[draw_negative(prob, index, z)] += 1
    return counts


def test_negative_draws_follow_the_table():
    counts = np.array([1000, 400, 90, 30, 7, 5, 5, 1], dtype=np.float64)
    prob, index = alias_table(counts ** 0.5)
    n = 100_000
    drawn = _draw_many(prob, index, n, 7)
    expected = n * counts ** 0.5 / (counts ** 0.5).sum()
    assert np.all(np.abs(drawn - expected) < 5 * np.sqrt(expected) + 1)


@pytest.mark.parametrize("model, power", [("skipgram", 0.5), ("cbow", 0.75)])
def test_trainer_draws_negatives_from_a_power_of_the_vocabulary_counts(model, power):
    """skipgram: fastText's NegativeSamplingLoss table, count ** 0.5; cbow: word2vec's 0.75."""
    from fastembed.wordvec.training import _Trainer

    d, stream = build_vocabulary([("a " * 9 + "b " * 3 + "c").strip()] * 4, min_count=1,
                                 label_prefix="__label__", bucket=100, minn=3, maxn=4)
    sw, d = subword_rows(d)
    args = UnsupervisedArgs(model=model, threads=1, dim=4, min_count=1)
    t = _Trainer(args, d, stream, sw, np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32), 0)
    w = d.word_counts.astype(np.float64) ** power
    np.testing.assert_allclose(implied_distribution(t.alias_prob, t.alias_index), w / w.sum(), rtol=1e-6)


def test_subsampling_keep_probability_is_fasttexts_formula():
    counts = np.array([500_000, 20_000, 1_000, 5], dtype=np.int64)
    ntokens, t = 1_000_000, 1e-4
    f = counts / ntokens
    expected = np.sqrt(t / f) + t / f
    np.testing.assert_allclose(keep_probabilities(counts, ntokens, t), expected, rtol=1e-6)
    assert np.all(keep_probabilities(counts, ntokens, 0.0) == 1.0)


def test_subsampling_keeps_that_share_of_tokens():
    """On one long line of one frequent and many rare words, training consumes every token but
    keeps the frequent one at its keep probability (counted through the trained targets)."""
    d, stream = build_vocabulary(["the " * 5000 + " ".join(f"w{i}" for i in range(5000))],
                                 min_count=1, label_prefix="__label__", bucket=1000, minn=0, maxn=0)
    keep = keep_probabilities(d.word_counts, d.ntokens, 1e-3)
    the = d.get_word_id("the")
    assert 0.0 < keep[the] < 0.2 and keep[d.get_word_id("w1")] > 1.0
    kept = _kept_share(stream.tokens, keep, the, 200_000)
    assert abs(kept - keep[the]) < 0.01


@njit(**SERIAL)
def _kept_share(tokens, keep, word, n):
    state = np.uint64(3)
    kept = 0
    for _ in range(n):
        state, z = splitmix64(state)
        if np.float32(np.float64(z >> np.uint64(40)) / 16777216.0) < keep[word]:
            kept += 1
    return kept / n


# -- vocabulary, token stream, subwords ---------------------------------------------------------

def test_vocabulary_and_token_stream():
    lines = ["b a b __label__x c", "", "a b b zz", "b"]
    d, stream = build_vocabulary(lines, min_count=2, label_prefix="__label__", bucket=50,
                                 minn=2, maxn=3)
    assert d.words == ["b", "</s>", "a"]
    assert d.labels == ["__label__x"]
    b, eos, a = 0, 1, 2
    assert stream.tokens.tolist() == [b, a, b, eos, eos, a, b, b, eos, b, eos]
    assert stream.offsets.tolist() == [0, 4, 5, 9, 11]
    assert d.ntokens == 6 + 1 + 5 + 2  # every token, labels and unknown words too, and </s>


def test_subword_rows_renumber_only_the_used_buckets():
    d, _ = build_vocabulary(["hello world hello there"], min_count=1, label_prefix="__label__",
                            bucket=2_000_000, minn=2, maxn=4)
    sw, mapped = subword_rows(d)
    offsets, hashed = vocabulary_subwords(d)
    assert np.array_equal(sw.bucket_ids, np.unique(hashed[hashed >= d.nwords] - d.nwords))
    assert np.array_equal(mapped.bucket_ids, sw.bucket_ids)
    for w, word in enumerate(d.words):
        ids = hashed[offsets[w]:offsets[w + 1]]
        rows = sw.rows[sw.offsets[w]:sw.offsets[w + 1]]
        assert rows[0] == w == ids[0]
        assert np.array_equal(sw.bucket_ids[rows[1:] - d.nwords], ids[1:] - d.nwords)
        assert np.array_equal(mapped.word_ids(word), rows)  # the dictionary maps words alike
    unseen = mapped.word_ids("zzzzqqqq")
    assert unseen.size and np.all(unseen == mapped.unseen_row)


@pytest.mark.parametrize("word", ["where", "é", "naïve", "日本語", "a", "<b>"])
def test_char_ngrams_as_fasttext_defines_them(word):
    """n counts characters; the added '<' and '>' alone are left out."""
    b = word.encode()
    grams = char_ngrams(b, 1, 3)
    chars = ["<"] + list(word) + [">"]
    expected = ["".join(chars[i:i + n]) for i in range(len(chars)) for n in range(1, 4)
                if i + n <= len(chars) and not (n == 1 and i in (0, len(chars) - 1))]
    assert [g.decode() for g in grams] == expected


# -- fastText -----------------------------------------------------------------------------------

_FT_TRAIN = textwrap.dedent(
    """
    import json, sys
    import fasttext
    corpus, out, words = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    m = fasttext.train_unsupervised(corpus, model="skipgram", dim=16, epoch=1, minCount=2,
                                    minn=2, maxn=5, bucket=5000, thread=1, verbose=0)
    m.save_model(out)
    result = {w: [m.get_subwords(w)[0], m.get_subwords(w)[1].tolist(),
                  m.get_word_vector(w).tolist()] for w in words}
    result["__neighbors__"] = [[float(s), w] for s, w in m.get_nearest_neighbors(words[0], k=5)]
    result["__words__"] = m.get_words(on_unicode_error="replace")
    m = fasttext.train_unsupervised(corpus, model="skipgram", dim=4, epoch=1, minCount=2,
                                    minn=2, maxn=5, bucket=100000, thread=2, verbose=0)
    inp = m.get_input_matrix()
    result["__input_shape__"] = list(inp.shape)
    result["__zero_rows__"] = [int(r) for r in (inp == 0).all(axis=1).nonzero()[0]]
    print(json.dumps(result))
    """
)
PROBE_WORDS = ["the", "windows", "graphics", "xyzzyq", "naïve", "über", "</s>", "a"]


@pytest.fixture(scope="module")
def fasttext_model(tmp_path_factory):
    pytest.importorskip("fasttext")
    d = tmp_path_factory.mktemp("ft")
    corpus = d / "corpus.txt"
    corpus.write_bytes(gzip.decompress((FIXTURES / "20newsgroups_train_head1200.txt.gz").read_bytes())[:400_000])
    env = dict(os.environ, MALLOC_PERTURB_="255")  # see tests/test_fasttext_format.py
    run = subprocess.run([sys.executable, "-c", _FT_TRAIN, str(corpus), str(d / "sg.bin"),
                          json.dumps(PROBE_WORDS)], check=True, env=env, timeout=300,
                         capture_output=True, text=True)
    return corpus, d / "sg.bin", json.loads(run.stdout)


@pytest.mark.slow_without_jit
def test_subword_ids_equal_fasttexts_get_subwords(fasttext_model):
    corpus, path, expected = fasttext_model
    ours = train_unsupervised(str(corpus), dim=8, epoch=1, min_count=2, minn=2, maxn=5,
                              bucket=5000, threads=1, verbose=0)
    assert ours.words == expected["__words__"] or sorted(ours.words) == sorted(expected["__words__"])
    nwords = len(ours.words)
    for word in PROBE_WORDS:
        names, ids = ours.get_subwords(word)
        ft_names, ft_ids = expected[word][0], expected[word][1]
        assert names == ft_names, word
        known = ours.get_word_id(word) >= 0
        assert known == (len(ft_ids) > 0 and ft_ids[0] < nwords)
        assert ids[known:].tolist() == ft_ids[known:], word  # n-gram ids: nwords + hash % bucket
        if known:  # word ids depend on how ties in counts are ordered: compare the words
            assert ours.words[ids[0]] == expected["__words__"][ft_ids[0]]
            offsets, trained = vocabulary_subwords(ours.dictionary)  # what training reads
            w = ids[0]
            assert trained[offsets[w] + 1:offsets[w + 1]].tolist() == ft_ids[1:], word


def test_fasttext_bin_loads_with_fasttexts_vectors(fasttext_model):
    _, path, expected = fasttext_model
    model = fastembed.load_model(path)
    assert isinstance(model, WordVectors) and model.args.model == "skipgram"
    assert model.words == expected["__words__"]
    for word in PROBE_WORDS:
        np.testing.assert_allclose(model.get_word_vector(word), expected[word][2], rtol=1e-5, atol=1e-6)
        assert model.get_subwords(word)[1].tolist() == expected[word][1]
    ours = model.get_nearest_neighbors(PROBE_WORDS[0], k=5)
    theirs = expected["__neighbors__"]  # near-ties may swap: compare the similarities
    np.testing.assert_allclose([s for s, _ in ours], [s for s, _ in theirs], rtol=1e-4)
    unit = model.word_vectors()
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    query = model.get_word_vector(PROBE_WORDS[0])
    for score, word in theirs:
        similarity = unit[model.get_word_id(word)] @ query / np.linalg.norm(query)
        np.testing.assert_allclose(similarity, score, rtol=1e-4)


def test_fasttext_starts_most_ngram_rows_at_zero(fasttext_model):
    """What :func:`fastembed.wordvec.training.init_input` rests on: fastText's
    ``DenseMatrix::uniform`` fills one tenth of the input table per thread (here 2) and leaves
    the rest zero, so after training the rows past those tenths that no vocabulary word uses
    (training never touches them) are still exactly zero, and those before them are not."""
    corpus, _, expected = fasttext_model
    rows, dim = expected["__input_shape__"]
    ours = train_unsupervised(str(corpus), dim=4, epoch=1, min_count=2, minn=2, maxn=5,
                              bucket=100000, threads=1, verbose=0)
    offsets, trained = vocabulary_subwords(ours.dictionary)
    assert rows == ours.dictionary.nwords + 100000
    block = 2 * (rows * dim // 10)  # elements filled: two tenths (uniformThread, 2 threads)
    untouched = np.setdiff1d(np.arange(rows), trained)
    past = untouched[untouched >= -(-block // dim)]
    zero = np.zeros(rows, dtype=bool)
    zero[expected["__zero_rows__"]] = True
    assert past.size > 10_000 and zero[past].all()
    assert not zero[:block // dim].any()


def test_input_table_starts_as_fasttexts_with_two_threads():
    """Word rows U(-1/dim, 1/dim) (distinct, within the bound); an n-gram row random when its
    fastText row (nwords + bucket) is below 2/10 of fastText's table, zero after; the row of
    the unused buckets zero. The same rows as test_fasttext_starts_most_ngram_rows_at_zero
    finds random and zero in a fastText model trained with 2 threads."""
    from fastembed.wordvec.training import init_input

    dim, nwords, bucket = 10, 300, 2000
    cut = 2 * (nwords + bucket) // 10 - nwords  # buckets below it start random: 160
    bucket_ids = np.array([0, 5, cut - 1, cut, cut + 1, 1999], dtype=np.int32)
    inp = np.full((nwords + bucket_ids.size + 1, dim), np.nan, dtype=np.float32)
    init_input(inp, nwords, bucket_ids, bucket, seed=3)
    random_rows = np.concatenate([inp[:nwords], inp[nwords:nwords + 3]])
    assert (np.abs(random_rows) < 1.0 / dim).all()
    assert np.unique(random_rows).size == random_rows.size
    assert 0.4 / dim < np.abs(random_rows).mean() < 0.6 / dim  # uniform: mean |x| = bound / 2
    assert (inp[nwords + 3:] == 0).all()


# -- the API on a real corpus -----------------------------------------------------------------

@pytest.fixture(scope="module")
def newsgroups(tmp_path_factory):
    """20 Newsgroups (1,200 posts, 0.4M words), labels stripped, lowercased."""
    text = gzip.decompress((FIXTURES / "20newsgroups_train_head1200.txt.gz").read_bytes())
    lines = [b" ".join(w for w in line.split() if not w.startswith(b"__label__")).lower()
             for line in text.splitlines()]
    path = tmp_path_factory.mktemp("ng") / "corpus.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture(scope="module")
def small_corpus(newsgroups, tmp_path_factory):
    """Its first 40 posts (12k words): small enough for the kernels as plain Python."""
    path = tmp_path_factory.mktemp("small") / "corpus.txt"
    path.write_bytes(b"".join(newsgroups.read_bytes().splitlines(keepends=True)[:40]))
    return path


@pytest.fixture(scope="module")
def skipgram_model(newsgroups):
    return train_unsupervised(str(newsgroups), dim=50, epoch=5, threads=2, verbose=0)


@pytest.fixture(scope="module")
def tiny_model(small_corpus):
    return train_unsupervised(str(small_corpus), dim=8, epoch=1, min_count=2, threads=1, verbose=0)


NEIGHBOURS = [("windows", "window"), ("graphics", "graphic"), ("israel", "israeli"),
              ("encryption", "encrypt"), ("drive", "drives")]


@pytest.mark.slow_without_jit
def test_nearest_neighbours_are_sensible(skipgram_model):
    for word, other in NEIGHBOURS:
        near = [w for _, w in skipgram_model.get_nearest_neighbors(word, k=20)]
        assert other in near, (word, near)


@pytest.mark.slow_without_jit
def test_cbow_neighbours_are_sensible(newsgroups):
    """cbow learns less from 0.4M words (fastText's cbow has 2 of the 5 NEIGHBOURS pairs in
    its top 20, this one 3): the surest pairs."""
    model = train_unsupervised(str(newsgroups), "cbow", dim=50, epoch=5, threads=1, verbose=0)
    for word, other in [("israel", "israeli"), ("drive", "drives"), ("graphics", "graphic")]:
        near = [w for _, w in model.get_nearest_neighbors(word, k=20)]
        assert other in near, (word, near)


def test_neighbours_and_analogies_equal_brute_force(tiny_model):
    m = tiny_model
    vectors = m.word_vectors()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    word = m.words[7]
    q = m.get_word_vector(word)
    sims = unit @ (q / np.linalg.norm(q))
    order = [m.words[i] for i in np.argsort(-sims, kind="stable") if m.words[i] != word][:5]
    assert [w for _, w in m.get_nearest_neighbors(word, k=5)] == order
    abc = (m.words[3], m.words[12], "unseenword")
    a, b, c = (m.get_word_vector(w) for w in abc)
    q = a / np.linalg.norm(a) - b / np.linalg.norm(b) + c / np.linalg.norm(c)
    sims = unit @ (q / np.linalg.norm(q))
    order = [m.words[i] for i in np.argsort(-sims, kind="stable") if m.words[i] not in abc][:3]
    got = m.get_analogies(*abc, k=3)
    assert [w for _, w in got] == order
    np.testing.assert_allclose([s for s, _ in got], [sims[m.words.index(w)] for w in order], rtol=1e-4)


def test_word_vectors_are_subword_means(tiny_model):
    m = tiny_model
    for i in (0, 10, len(m.words) - 1):
        w = m.words[i]
        rows = m.dictionary.word_ids(w)
        assert rows[0] == i and rows.size == 1 + len(m.get_subwords(w)[0]) - 1
        np.testing.assert_allclose(m.get_word_vector(w), m.input_matrix[rows].mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(m.word_vectors()[i], m.get_word_vector(w), rtol=1e-5, atol=1e-7)
    rows = m.dictionary.word_ids("unseenword")  # n-gram rows only; unused buckets: the zero row
    np.testing.assert_allclose(m.get_word_vector("unseenword"), m.input_matrix[rows].mean(axis=0),
                               rtol=1e-6)
    assert not m.input_matrix[-1].any()


@pytest.mark.slow_without_jit
def test_unknown_words_get_vectors_near_their_relatives(skipgram_model):
    m = skipgram_model
    assert m.get_word_id("windowsxp") == -1
    v, w = m.get_word_vector("windowsxp"), m.get_word_vector("windows")
    assert v @ w / np.linalg.norm(v) / np.linalg.norm(w) > 0.5


def test_save_load_and_vec_in_gensim(tiny_model, tmp_path):
    m = tiny_model
    m.save(tmp_path / "m.fe")
    loaded = fastembed.load_model(tmp_path / "m.fe")
    assert isinstance(loaded, WordVectors) and loaded.words == m.words
    assert loaded.args == m.args
    assert np.array_equal(loaded.bucket_ids, m.bucket_ids)
    for word in (m.words[4], "unseenword"):
        np.testing.assert_array_equal(loaded.get_word_vector(word), m.get_word_vector(word))
    m.save_vec(tmp_path / "m.vec")
    gensim_models = pytest.importorskip("gensim.models")
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(tmp_path / "m.vec"))
    assert len(kv.index_to_key) == len(m.words)
    vectors = m.word_vectors()
    for i in (0, 5, len(m.words) - 1):
        np.testing.assert_allclose(kv[kv.index_to_key[i]], vectors[i], rtol=1e-4, atol=1e-6)


def test_inputs_lines_and_bytes_give_the_same_model(small_corpus):
    lines = small_corpus.read_text(errors="surrogateescape").splitlines()[:20]
    kw = dict(dim=8, epoch=1, threads=1, min_count=2, verbose=0)
    a = train_unsupervised(lines, **kw)
    b = train_unsupervised(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"), **kw)
    assert a.words == b.words
    np.testing.assert_array_equal(a.input_matrix, b.input_matrix)


# -- settings and errors ------------------------------------------------------------------------

def test_shared_settings_are_declared_once():
    by_name = {s.name: s for s in SETTINGS}
    for s in UNSUPERVISED_SETTINGS:
        if s.name in by_name:
            assert s.help == by_name[s.name].help and s.low == by_name[s.name].low
    defaults = {s.name: s.default for s in UNSUPERVISED_SETTINGS}
    assert defaults == dict(model="skipgram", lr=0.05, dim=100, epoch=5, ws=5, neg=5, min_count=5,
                            minn=3, maxn=6, t=1e-4, bucket=2_000_000, threads=0, seed=0,
                            label_prefix="__label__")


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(model="glove"), ArgumentError, "model must be one of"),
    (dict(minn=5, maxn=3), ArgumentError, "minn (5) must not exceed maxn (3)"),
    (dict(ws=0), ArgumentError, "ws must be"),
    (dict(neg=0), ArgumentError, "neg must be"),
    (dict(t=-1.0), ArgumentError, "t must be"),
    (dict(dimension=3), ArgumentError, "unknown training argument: dimension"),
    (dict(min_count=10**6), CorpusError, "min_count"),
])
def test_bad_settings_and_corpora_raise_one_line_errors(small_corpus, kwargs, error, fragment):
    with pytest.raises(error) as info:
        train_unsupervised(str(small_corpus), verbose=0, **kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_divergence_is_one_error(small_corpus):
    with pytest.raises(TrainingDiverged, match="diverged"):
        train_unsupervised(str(small_corpus), lr=1e8, dim=8, epoch=1, min_count=2, threads=1,
                           verbose=0)


def test_empty_corpus_and_missing_file(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(CorpusError, match="empty corpus"):
        train_unsupervised(str(tmp_path / "empty.txt"), verbose=0)
    with pytest.raises(FileNotFoundError):
        train_unsupervised(str(tmp_path / "missing.txt"), verbose=0)


def test_corrupt_model_file(tmp_path):
    (tmp_path / "bad.bin").write_bytes(b"\xba\x16\x4f\x2f" + b"\0" * 20)
    with pytest.raises(ModelFileError):
        WordVectors.load(tmp_path / "bad.bin")


def _rewrite(src, dst, meta_edit=None, array_edit=None):
    """Copy a model file, editing its metadata (a dict) or one of its arrays."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    if meta_edit:
        meta_edit(meta)
    if array_edit:
        array_edit(arrays)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)


def _set_input(arrays, row, value):
    arrays["input_matrix"] = arrays["input_matrix"].copy()
    arrays["input_matrix"][row] = value


@pytest.mark.parametrize("meta_edit, array_edit, fragment", [
    (lambda m: m.update(kind="classifier"), None, "kind"),
    (lambda m: m.update(missing_buckets="random"), None, "missing_buckets"),
    (lambda m: m["args"].update(model="glove"), None, "args"),
    (lambda m: m["args"].pop("neg"), None, "args.neg is missing"),
    (lambda m: m["dictionary"].update(minn=1), None, "dictionary.minn"),
    (lambda m: m["dictionary"].update(nwords=0), None, "dictionary.nwords"),
    (None, lambda a: _set_input(a, -1, 1.0), "not zero"),
    (None, lambda a: _set_input(a, 0, np.nan), "NaN"),
    (None, lambda a: a.update(output_matrix=a["output_matrix"][:-1]), "output_matrix"),
])
def test_hostile_model_files_are_one_line_errors(tiny_model, tmp_path, meta_edit, array_edit, fragment):
    tiny_model.save(tmp_path / "good.fe")
    _rewrite(tmp_path / "good.fe", tmp_path / "bad.fe", meta_edit, array_edit)
    with pytest.raises(ModelFileError) as info:
        WordVectors.load(tmp_path / "bad.fe")
    assert fragment in str(info.value) and "\n" not in str(info.value)


# -- command line -------------------------------------------------------------------------------

def test_cli_skipgram_and_cbow(small_corpus, tmp_path):
    from click.testing import CliRunner

    for command in ("skipgram", "cbow"):
        out, vec = tmp_path / f"{command}.fe", tmp_path / f"{command}.vec"
        result = CliRunner().invoke(main, [command, str(small_corpus), "-o", str(out), "--vec",
                                           str(vec), "--dim", "10", "--epoch", "1", "--threads", "1"],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "vocabulary" in result.stdout and out.exists() and vec.exists()
        model = fastembed.load_model(out)
        assert model.args.model == command and model.dim == 10
        assert vec.read_text().split("\n", 1)[0] == f"{len(model.words)} 10"
        result = CliRunner().invoke(main, ["vectors", str(out)], catch_exceptions=False)
        assert result.exit_code == 0 and result.stdout == vec.read_text()


@pytest.mark.parametrize("args, fragment", [
    (["--ws", "0"], "--ws"),
    (["--min-count", "100000000"], "min_count"),
    (["--minn", "6", "--maxn", "3"], "minn (6) must not exceed maxn (3)"),
])
def test_cli_errors_are_one_line(small_corpus, tmp_path, args, fragment):
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["skipgram", str(small_corpus), "-o", str(tmp_path / "m.fe")] + args,
                                catch_exceptions=False)
    err = result.stderr.strip()
    assert result.exit_code != 0 and err.count("\n") == 0 and err.startswith("fastembed: error: ")
    assert fragment in err and "Traceback" not in result.output
    assert not (tmp_path / "m.fe").exists()
