"""Chunk-claiming batch prediction against the serial block kernel (itself checked against NumPy and fastText)."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastembed.model.claim_team import TEAM, ClaimTeam, chunk_lines, claim, finish_claimed, predict_claimed
from fastembed.model.line_predict import _predict_lines, line_ends, predict_block, worth_threads

from test_predict import TEXTS, fixture_lines, random_model, strip_labels  # noqa: E402

LINES = [strip_labels(line) for line in fixture_lines("20newsgroups_test_head400.txt.gz", 40)] + TEXTS


@pytest.fixture(scope="module")
def model():
    return random_model("tfidf", "softmax")[0]


def _block(lines):
    data = np.frombuffer(b"\n".join(lines) + b"\n", dtype=np.uint8)
    return data, line_ends(data)


def _assert_same(got, want):
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def test_claim_adds_atomically_and_returns_the_value_before():
    state = np.array([5, -2, 0], np.int64)
    assert claim(state, 0, 1) == 5 and claim(state, 0, 3) == 6 and claim(state, 1, 0) == -2
    assert state.tolist() == [9, -2, 0]


@pytest.mark.slow_without_jit
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_caller_finishes_any_stalled_worker_state_exactly(model, data):
    """A worker that claimed the first chunks, finished some and stalled on the rest: the caller
    copies the finished ones and predicts the others again; the result is predict_block's."""
    lines = data.draw(st.lists(st.sampled_from(LINES), min_size=0, max_size=30))
    k = data.draw(st.integers(1, 4))
    threshold = data.draw(st.sampled_from([0.0, 0.2]))
    block, ends = _block(lines)
    p = model._ready()
    want = predict_block(block, ends, p.vocab, p.clf, k, threshold)
    n = ends.size
    n_chunks = min(n, data.draw(st.integers(1, 12)))
    state = np.zeros(1 + n_chunks, np.int64)
    w_ids = np.full((1, n, k), -7, np.int32)  # what an unfinished chunk leaves: garbage
    w_probs = np.full((1, n, k), np.nan)
    w_counts = np.full((1, n), -7, np.int32)
    taken = data.draw(st.integers(0, n_chunks))
    for c in range(taken):  # the worker's claims, in counter order
        assert claim(state, 0, 1) == c
        if data.draw(st.booleans()):
            l0, l1 = chunk_lines(n, n_chunks, c)
            _predict_lines(block, ends, l0, l1, p.vocab, p.clf, k, threshold, w_ids[0], w_probs[0], w_counts[0])
            claim(state, 1 + c, 2)
    got = (np.empty((n, k), np.int32), np.empty((n, k), np.float64), np.empty(n, np.int32))
    predict_claimed(block, ends, p.vocab, p.clf, k, threshold, *got, state, n_chunks, 0)
    assert state[0] >= n_chunks
    finish_claimed(block, ends, p.vocab, p.clf, k, threshold, *got, state, n_chunks, w_ids, w_probs, w_counts)
    _assert_same(got, want)


@pytest.mark.slow_without_jit
@settings(max_examples=30, deadline=None)
@given(n_lines=st.integers(0, 60), n_threads=st.integers(1, 3), per_thread=st.integers(1, 9),
       k=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_team_gives_predict_block_output(model, n_lines, n_threads, per_thread, k, seed):
    rng = np.random.default_rng(seed)
    lines = [LINES[i] for i in rng.integers(0, len(LINES), n_lines)]
    block, ends = _block(lines)
    p = model._ready()
    want = predict_block(block, ends, p.vocab, p.clf, k, 0.0)
    _assert_same(TEAM.run(block, ends, p.vocab, p.clf, k, 0.0, n_threads, per_thread), want)


def test_team_under_concurrent_callers(model):
    """Two callers share one worker: each gets its own block's predictions."""
    import threading

    team = ClaimTeam()
    p = model._ready()
    blocks = [_block(LINES[i::3] * 4) for i in range(3)]
    wants = [predict_block(b, e, p.vocab, p.clf, 2, 0.0) for b, e in blocks]
    errors = []

    def caller(i):
        for _ in range(5):
            b, e = blocks[i]
            try:
                _assert_same(team.run(b, e, p.vocab, p.clf, 2, 0.0, 2), wants[i])
            except AssertionError as exc:  # reported by the main thread
                errors.append(exc)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_predictor_block_uses_the_team_for_a_large_block(model):
    lines = LINES * 6
    data = np.frombuffer(b"\n".join(lines) + b"\n", dtype=np.uint8)
    p = model._ready()
    assert worth_threads(data.size, len(lines), p._line_macs) == (numba.get_num_threads() >= 2)
    got = p.block(data, 3, 0.0)
    _assert_same(got, predict_block(data, line_ends(data), p.vocab, p.clf, 3, 0.0))
