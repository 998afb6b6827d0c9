"""The prediction path's pooling weights of one bag against the batch path's and a plain NumPy computation."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastembed.model.line_predict import POOL_SQRT, POOL_TFIDF, _tf_slots, bag_weights_of
from fastembed.model.pooling import bag_weights


def _numpy_tfidf(rows, idf):
    """tf-idf weights of one bag, each occurrence its share, L2-normalised, in float64."""
    uniq, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    t = counts[inverse].astype(np.float64)
    w = (1.0 + np.log(t)) * idf[rows].astype(np.float64)
    norm = np.sqrt(np.sum(w * w / t))
    return w / t / norm if norm > 0 else np.zeros_like(w)


def _line_weights(rows, pooling, idf):
    n = rows.size
    slots = _tf_slots(n)
    tf_rows = np.empty(slots, np.int32)
    tf_counts = np.empty(slots, np.int32)
    weights = np.full(n, np.nan, np.float32)
    return bag_weights_of(rows.astype(np.int32), n, pooling, idf, tf_rows, tf_counts, weights).copy()


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_tfidf_line_weights_equal_batch_weights_and_numpy(data):
    # few distinct rows: most bags repeat some (t > 1) and keep some once (t == 1)
    n_rows = data.draw(st.integers(1, 40))
    rows = np.array(data.draw(st.lists(st.integers(0, n_rows - 1), min_size=0, max_size=60)), np.int32)
    # no subnormal idf (below 1.2e-38): a real idf is at least ~1 (smoothed: 1 + ln(...)), and a
    # subnormal one keeps too few bits in the float32 share w / t for the float64 reference
    # (idf [1e-44, 3e-44], rows [0, 0, 1]: 0.2488 against 0.2458; both paths still agree bit
    # for bit). CI's hypothesis run drew one.
    idf = np.array(data.draw(st.lists(st.floats(0.0, 8.0, width=32, allow_subnormal=False),
                                      min_size=n_rows, max_size=n_rows)), np.float32)
    got = _line_weights(rows, POOL_TFIDF, idf)
    batch = bag_weights("tfidf", rows, np.array([0, rows.size], np.int64), idf)
    assert got.dtype == np.float32 and got.shape == rows.shape
    np.testing.assert_array_equal(got, batch)  # the same bits as training's and predict_probs' weights
    np.testing.assert_allclose(got, _numpy_tfidf(rows, idf), rtol=1e-6, atol=1e-7)


def test_tfidf_line_weights_of_rows_seen_once_and_repeated():
    rows = np.array([3, 1, 3, 2, 3, 1], np.int32)  # row 2 once, row 1 twice, row 3 three times
    idf = np.array([0.0, 1.5, 2.0, 0.5], np.float32)
    got = _line_weights(rows, POOL_TFIDF, idf)
    np.testing.assert_allclose(got, _numpy_tfidf(rows, idf), rtol=1e-6)
    assert got[3] > 0 and got[0] == got[2] == got[4] and got[1] == got[5]


def test_sqrt_line_weights():
    rows = np.array([5, 5, 7, 0], np.int32)
    np.testing.assert_array_equal(_line_weights(rows, POOL_SQRT, np.zeros(0, np.float32)),
                                  np.full(4, np.float32(0.5)))
