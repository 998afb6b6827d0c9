"""FastembedClassifier against fastembed itself, scikit-learn's own tools and its estimator checks.

The references: ``fastembed.train_supervised`` on the same fastText lines (with ``threads=1``
and the same seed a fit is deterministic, so the estimator must give the same probabilities),
scikit-learn's metrics, splitters and ``MultiLabelBinarizer``, and ``pickletools``.
"""

import gzip
import inspect
import os
import pickle
import pickletools
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MultiLabelBinarizer
from sklearn.utils import estimator_checks

import fastembed
from fastembed.settings import SETTINGS
from fastembed.sklearn import FastembedClassifier

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
# small, fast and deterministic (one thread, the default seed)
SMALL = {"threads": 1, "dim": 10, "epoch": 5, "bucket": 20_000}


def read_fixture(name):
    """(lines, texts, label lists) of a fastText-format fixture."""
    with gzip.open(FIXTURES / name, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    texts, labels = [], []
    for line in lines:
        tokens = line.split(" ")
        n_labels = next(i for i, t in enumerate(tokens) if not t.startswith("__label__"))
        labels.append([t[len("__label__"):] for t in tokens[:n_labels]])
        texts.append(" ".join(tokens[n_labels:]))
    return lines, texts, labels


@pytest.fixture(scope="module")
def trec():
    lines, texts, labels = read_fixture("trec6_train_slice.txt.gz")
    return lines, texts, np.array([lab[0] for lab in labels])


@pytest.fixture(scope="module")
def sms():
    lines, texts, labels = read_fixture("sms_spam_train_slice.txt.gz")
    return lines, texts, np.array([lab[0] for lab in labels])


@pytest.fixture(scope="module")
def reuters():
    return read_fixture("reuters21578_modapte_train_slice.txt.gz")


@pytest.fixture(scope="module")
def trec_fitted(trec):
    _, texts, y = trec
    return FastembedClassifier(**SMALL).fit(texts[:240], y[:240])


def model_probabilities(model, texts, classes):
    """(n, n_classes) probabilities of ``model`` (trained on the original labels), by class."""
    proba = np.zeros((len(texts), len(classes)))
    column = {f"__label__{c}": j for j, c in enumerate(classes)}
    for i, (labels, probs) in enumerate(model.predict(texts, k=-1)):
        proba[i, [column[label] for label in labels]] = probs
    return proba


# -- parameters ------------------------------------------------------------------------------


def test_parameters_are_train_supervised_settings():
    params = FastembedClassifier().get_params()
    # every setting stored in a model; not the paths of a run (init_model, checkpoint, resume)
    assert set(params) == {s.name for s in SETTINGS if s.stored} | {"preset", "verbose"}
    assert {s.name for s in SETTINGS if not s.stored} == {"init_model", "checkpoint", "resume"}
    assert set(params) <= set(inspect.signature(fastembed.train_supervised).parameters)
    assert all(params[name] is None for name in params if name != "verbose")
    assert params["verbose"] == 0


def test_clone_get_params_set_params(trec):
    _, texts, y = trec
    est = FastembedClassifier(dim=12, seed=3, threads=1, epoch=2)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy is not est
    assert copy.set_params(dim=7, lr=0.5) is copy
    assert copy.get_params()["dim"] == 7 and copy.get_params()["lr"] == 0.5
    assert est.get_params()["dim"] == 12
    copy.fit(texts[:100], y[:100])
    assert copy.model_.dim == 7 and copy.model_.args.lr == 0.5
    assert not hasattr(clone(copy), "model_")  # a clone is unfitted
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(dimension=3)
    with pytest.raises(ValueError, match="dim must be"):  # fastembed's ArgumentError
        clone(est).set_params(dim=0).fit(texts[:100], y[:100])


# -- single-label ----------------------------------------------------------------------------


def test_fit_predict_proba_on_trec(trec_fitted, trec):
    _, texts, y = trec
    est = trec_fitted
    np.testing.assert_array_equal(est.classes_, np.unique(y[:240]))
    proba = est.predict_proba(texts[240:])
    assert proba.shape == (60, 6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(est.predict(texts[240:]), est.classes_[proba.argmax(axis=1)])
    decision = est.decision_function(texts[240:])
    np.testing.assert_allclose(decision, np.log(proba))
    np.testing.assert_allclose(est.predict_log_proba(texts[240:]), np.log(proba))
    assert est.score(texts[240:], y[240:]) == accuracy_score(y[240:], est.predict(texts[240:]))


def test_same_model_as_train_supervised(trec_fitted, trec):
    """Same lines up to label names, same settings, one thread: the same probabilities per class."""
    lines, texts, y = trec
    model = fastembed.train_supervised(lines[:240], verbose=0, **SMALL)
    expected = model_probabilities(model, texts[240:], trec_fitted.classes_)
    np.testing.assert_allclose(trec_fitted.predict_proba(texts[240:]), expected, rtol=1e-5, atol=1e-7)
    _, p_at_1, _ = model.test(lines[240:])
    assert trec_fitted.score(texts[240:], y[240:]) == pytest.approx(p_at_1)


def test_binary_decision_function_is_log_odds(sms):
    lines, texts, y = sms
    est = FastembedClassifier(**SMALL).fit(texts[:200], y[:200])
    np.testing.assert_array_equal(est.classes_, ["ham", "spam"])
    proba = est.predict_proba(texts[200:])
    decision = est.decision_function(texts[200:])
    assert decision.shape == (len(texts) - 200,)
    np.testing.assert_allclose(decision, np.log(proba[:, 1]) - np.log(proba[:, 0]))
    np.testing.assert_array_equal(est.predict(texts[200:]), np.where(decision > 0, "spam", "ham"))
    model = fastembed.train_supervised(lines[:200], verbose=0, **SMALL)
    np.testing.assert_allclose(proba, model_probabilities(model, texts[200:], est.classes_),
                               rtol=1e-5, atol=1e-7)


def test_integer_string_and_spaced_labels_train_the_same_model(trec):
    """Classes become label indices: any labels that sort the same give the same model."""
    _, texts, y = trec
    classes = np.unique(y)
    spaced = np.array([f"class {c.lower()} with spaces" for c in classes])  # same sort order
    codes = np.searchsorted(classes, y[:150])
    by_string = FastembedClassifier(**SMALL).fit(texts[:150], y[:150])
    by_int = FastembedClassifier(**SMALL).fit(texts[:150], codes * 10)
    by_spaced = FastembedClassifier(**SMALL).fit(texts[:150], spaced[codes])
    np.testing.assert_array_equal(by_int.classes_, np.arange(6) * 10)
    np.testing.assert_array_equal(by_spaced.classes_, spaced)
    expected = by_string.predict_proba(texts[150:])
    np.testing.assert_array_equal(by_int.predict_proba(texts[150:]), expected)
    np.testing.assert_array_equal(by_spaced.predict_proba(texts[150:]), expected)
    assert by_int.predict(texts[150:]).dtype.kind == "i"
    np.testing.assert_array_equal(by_spaced.predict(texts[150:]), spaced[expected.argmax(axis=1)])


def test_label_tokens_and_newlines_in_texts(trec):
    """Label-like tokens of a text are dropped (prediction ignores them too); a newline is a space."""
    _, texts, y = trec
    dirty = [f"__label__x{i} {t} __label__HUM\nend" for i, t in enumerate(texts[:150])]
    clean = [f"{t}  end" for t in texts[:150]]
    est = FastembedClassifier(**SMALL).fit(dirty, y[:150])
    reference = FastembedClassifier(**SMALL).fit(clean, y[:150])
    assert len(est.model_.labels) == 6
    np.testing.assert_array_equal(est.predict_proba(texts[150:]), reference.predict_proba(texts[150:]))
    assert len(est.predict(["two\nlines", "one"])) == 2


def test_ova_probabilities_are_normalised_for_single_label(sms):
    _, texts, y = sms
    est = FastembedClassifier(loss="ova", **SMALL).fit(texts[:200], y[:200])
    raw = model_probabilities(est.model_, texts[200:], ["0", "1"])  # the model's own labels
    proba = est.predict_proba(texts[200:])
    np.testing.assert_allclose(proba, raw / raw.sum(axis=1, keepdims=True))


def test_class_dropped_by_min_count_label_gets_probability_zero(trec):
    _, texts, y = trec
    with pytest.warns(UserWarning, match="skipped 6 of 300 lines"):
        est = FastembedClassifier(min_count_label=10, **SMALL).fit(texts, y)  # ABBR: 6 samples
    proba = est.predict_proba(texts[:50])
    assert est.classes_[0] == "ABBR" and (proba[:, 0] == 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_rows_whose_probabilities_all_underflow_become_uniform(sms, monkeypatch):
    """ova sigmoids can all underflow to 0: such a row spreads evenly over the trained classes."""
    _, texts, y = sms
    est = FastembedClassifier(loss="ova", **SMALL).fit(texts[:100], y[:100])
    model_predict = est.model_.predict_lines
    monkeypatch.setattr(est.model_, "predict_lines", lambda lines, k: [
        (labels, probs * (i % 2)) for i, (labels, probs) in enumerate(model_predict(lines, k=k))])
    proba = est.predict_proba(texts[100:110])
    np.testing.assert_array_equal(proba[::2], 0.5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


# -- sample weights --------------------------------------------------------------------------


def test_sample_weights_multiply_the_learning_rate(trec):
    # Under SGD a weight multiplies the step: weights all 0.5 train exactly the model of half
    # the learning rate (0.5 is a power of two, so both products round alike), and fractional
    # weights reach train_supervised's sample_weight unchanged (the same lines, same model).
    lines, texts, y = trec
    half = FastembedClassifier(**SMALL).fit(texts[:150], y[:150], sample_weight=np.full(150, 0.5))
    slower = FastembedClassifier(**SMALL, lr=0.3 * 0.5).fit(texts[:150], y[:150])
    np.testing.assert_array_equal(half.predict_proba(texts[150:]), slower.predict_proba(texts[150:]))
    weights = np.random.default_rng(0).uniform(0.0, 3.0, size=150)
    est = FastembedClassifier(**SMALL).fit(texts[:150], y[:150], sample_weight=weights)
    column = {c: i for i, c in enumerate(est.classes_)}
    own = [f"__label__{column[label]} {text}" for label, text in zip(y[:150], texts[:150])]
    reference = fastembed.train_supervised(own, sample_weight=weights, verbose=0, **SMALL)
    expected = np.array([probs[np.argsort([int(lab[9:]) for lab in labels])]
                         for labels, probs in reference.predict_lines(texts[150:], k=-1)])
    np.testing.assert_allclose(est.predict_proba(texts[150:]), expected, rtol=1e-5, atol=1e-7)
    assert not np.array_equal(est.predict_proba(texts[150:]),
                              FastembedClassifier(**SMALL).fit(texts[:150], y[:150]).predict_proba(texts[150:]))
    ones = FastembedClassifier(**SMALL).fit(texts[:150], y[:150], sample_weight=[1] * 150)
    unweighted = FastembedClassifier(**SMALL).fit(texts[:150], y[:150])
    np.testing.assert_array_equal(ones.predict_proba(texts[150:]), unweighted.predict_proba(texts[150:]))


@pytest.mark.parametrize("weights, error, match", [
    (np.zeros(20), ValueError, "zero everywhere"),
    (np.ones(19), ValueError, "shape"),
    (-np.ones(20), ValueError, "non-negative"),
    (np.r_[np.zeros(10), np.ones(10)], ValueError, "at least 2 classes"),
])
def test_bad_sample_weights(weights, error, match):
    texts = [f"word{i % 3} other{i % 5}" for i in range(20)]
    y = np.repeat([0, 1], 10)
    with pytest.raises(error, match=match):
        FastembedClassifier(**SMALL).fit(texts, y, sample_weight=weights)


# -- multi-label -----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:unknown class")  # test labels unseen in training
def test_multilabel_on_reuters(reuters):
    lines, texts, labels = reuters
    train, test = slice(0, 160), slice(160, None)
    est = FastembedClassifier(**SMALL).fit(texts[train], labels[train])
    binarizer = MultiLabelBinarizer().fit(labels[train])
    np.testing.assert_array_equal(est.classes_, binarizer.classes_)
    assert est.multilabel_ and est.model_.args.loss == "ova"
    proba = est.predict_proba(texts[test])
    predicted = est.predict(texts[test])
    assert predicted.shape == proba.shape == (40, len(binarizer.classes_))
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(int))
    np.testing.assert_array_equal(est.decision_function(texts[test]) > 0, predicted == 1)
    model = fastembed.train_supervised(lines[train], verbose=0, **SMALL)  # auto: ova here
    np.testing.assert_allclose(proba, model_probabilities(model, texts[test], est.classes_),
                               rtol=1e-5, atol=1e-7)
    indicator = MultiLabelBinarizer(classes=est.classes_).fit_transform(labels[test])
    assert est.score(texts[test], labels[test]) == accuracy_score(indicator, predicted)
    assert est.score(texts[test], indicator) == accuracy_score(indicator, predicted)


def test_multilabel_indicator_matches_label_lists(reuters):
    _, texts, labels = reuters
    as_lists = FastembedClassifier(**SMALL).fit(texts[:160], labels[:160])
    indicator = MultiLabelBinarizer().fit_transform(labels[:160])
    as_matrix = FastembedClassifier(**SMALL).fit(texts[:160], indicator)
    np.testing.assert_array_equal(as_matrix.classes_, np.arange(indicator.shape[1]))
    np.testing.assert_array_equal(as_matrix.predict_proba(texts[160:]),
                                  as_lists.predict_proba(texts[160:]))
    with pytest.raises(ValueError, match="loss='ova'"):
        FastembedClassifier(loss="softmax", **SMALL).fit(texts[:160], indicator)


# -- pickling --------------------------------------------------------------------------------


def pickled_strings(data):
    """Every text a pickle holds: among them the module and class names of GLOBAL/STACK_GLOBAL."""
    return [str(arg) for op, arg, _ in pickletools.genops(data)
            if op.name in ("GLOBAL", "SHORT_BINUNICODE", "BINUNICODE", "UNICODE") and arg]


def test_pickle_carries_the_model_file(trec_fitted, trec, tmp_path):
    _, texts, _ = trec
    data = pickle.dumps(trec_fitted)
    names = pickled_strings(data)
    assert "fastembed.sklearn" in names  # the estimator class itself
    assert not any(name.startswith("fastembed.model") for name in names)
    restored = pickle.loads(data)
    np.testing.assert_array_equal(restored.predict_proba(texts), trec_fitted.predict_proba(texts))
    trec_fitted.model_.save(tmp_path / "m.fe")
    assert (tmp_path / "m.fe").read_bytes() in data  # the file's bytes, verbatim
    assert pickle.loads(pickle.dumps(clone(trec_fitted))).get_params() == trec_fitted.get_params()


# -- scikit-learn tools ----------------------------------------------------------------------


def test_pipeline_with_function_transformer(trec):
    _, texts, y = trec
    lower = FunctionTransformer(lambda xs: [x.lower() for x in xs])
    pipe = make_pipeline(lower, FastembedClassifier(**SMALL)).fit(texts[:200], y[:200])
    direct = FastembedClassifier(**SMALL).fit([t.lower() for t in texts[:200]], y[:200])
    np.testing.assert_array_equal(pipe.predict_proba(texts[200:]),
                                  direct.predict_proba([t.lower() for t in texts[200:]]))


@pytest.fixture(scope="module")
def grid_results(trec):
    _, texts, y = trec
    grid = {"dim": [5, 10], "epoch": [1, 3]}
    results = {}
    for n_jobs in (1, 2):
        search = GridSearchCV(FastembedClassifier(threads=1, bucket=20_000), grid, cv=2, n_jobs=n_jobs)
        results[n_jobs] = search.fit(texts, y)
    return results


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search(grid_results, trec, n_jobs):
    _, texts, y = trec
    search = grid_results[n_jobs]
    best = search.best_params_
    scores = search.cv_results_["mean_test_score"]
    assert scores.max() == search.best_score_
    refit = FastembedClassifier(threads=1, bucket=20_000, **best).fit(texts, y)
    np.testing.assert_array_equal(search.predict(texts), refit.predict(texts))
    # one thread per fit: the two workers give exactly the scores of the serial search
    np.testing.assert_array_equal(scores, grid_results[1].cv_results_["mean_test_score"])


def test_cross_val_score_matches_a_manual_loop(trec):
    _, texts, y = trec
    texts = np.array(texts, dtype=object)
    scores = cross_val_score(FastembedClassifier(**SMALL), texts, y, cv=3)
    manual = [FastembedClassifier(**SMALL).fit(texts[tr], y[tr]).score(texts[te], y[te])
              for tr, te in StratifiedKFold(3).split(texts, y)]
    np.testing.assert_array_equal(scores, manual)
    assert scores.mean() > 0.4  # 6 classes: chance is 0.26 (the most frequent class)


# -- input errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("X, y, error, match", [
    ("one string", [0], TypeError, "single str"),
    ([b"bytes", b"more"], [0, 1], TypeError, "must hold str"),
    (np.array([["a", "b"], ["c", "d"]]), [0, 1], ValueError, "1-D"),
    ([], [], ValueError, "0 samples"),
    (["a", "b"], [0, 1, 0], ValueError, "inconsistent"),
    (["a", "b"], None, ValueError, "requires y"),
    (["a", "b"], [1, 1], ValueError, "at least 2 classes"),
    (["a", "b"], [0.5, 1.5], ValueError, "Unknown label type"),
])
def test_input_errors(X, y, error, match):
    with pytest.raises(error, match=match):
        FastembedClassifier(**SMALL).fit(X, y)


def test_import_without_scikit_learn_names_the_extra():
    code = "import sys; sys.modules['sklearn'] = None; import fastembed.sklearn"
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 1
    assert "ImportError: fastembed.sklearn needs scikit-learn: pip install 'fastembed[sklearn]'" in run.stderr


def test_unfitted_estimator_raises():
    with pytest.raises(NotFittedError):
        FastembedClassifier().predict(["text"])


# -- scikit-learn's estimator checks -----------------------------------------------------------
#
# scikit-learn runs none of its checks on an estimator that declares string input
# (input_tags.string, no two_d_array): they all feed 2-D numeric arrays. So the checks run
# two ways. Those that never fit run on FastembedClassifier itself. Those that fit run on
# NumericRowsAsText, which writes each numeric row as a text of binned-value tokens and
# passes it on: they exercise the estimator's targets, classes, probabilities, decision
# function, sample weights, pickling, idempotence and invariances. Checks about numeric X
# alone would only test that adapter's validate_data, so they are skipped.

API_CHECKS = ("check_estimator_cloneable", "check_estimator_tags_renamed", "check_valid_tag_types",
              "check_estimator_repr", "check_no_attributes_set_in_init", "check_mixin_order",
              "check_do_not_raise_errors_in_init_or_set_params",
              "check_parameters_default_constructible", "check_get_params_invariance",
              "check_set_params")

NUMERIC_X_ONLY = "about numeric X (dtypes, NaN/inf, complex, sparse, memory layout, n_features_in_)"
NOT_APPLICABLE = {
    name: NUMERIC_X_ONLY for name in (
        "check_estimators_dtypes", "check_complex_data", "check_dtype_object",
        "check_estimators_empty_data_messages", "check_estimators_nan_inf",
        "check_estimator_sparse_tag", "check_estimator_sparse_array", "check_estimator_sparse_matrix",
        "check_f_contiguous_array_estimator", "check_readonly_memmap_input",
        "check_n_features_in", "check_n_features_in_after_fitting", "check_fit1d",
        "check_fit2d_1feature", "check_fit2d_predict1d", "check_positive_only_tag_during_fit",
        "check_array_api_input")
} | {"check_estimators_partial_fit_n_features": "no partial_fit: the check does nothing"}
EXPECTED_TO_FAIL = {
    "check_sample_weight_equivalence_on_dense_data":
        "a weight multiplies an example's SGD step (one step w times as long), which does not "
        "train the model of w repeated samples (w steps, in another order) "
        "(test_sample_weights_multiply_the_learning_rate)",
}


class NumericRowsAsText(FastembedClassifier):
    """Test adapter: each row of a numeric X becomes the text ``f0_<bin> f1_<bin> ...``."""

    def _as_texts(self, X, reset):
        from sklearn.utils.validation import validate_data

        bins = np.floor(validate_data(self, X, reset=reset) / 0.5).astype(np.int64)
        return [" ".join(f"f{j}_{b}" for j, b in enumerate(row)) for row in bins]

    def fit(self, X, y, sample_weight=None):
        return super().fit(self._as_texts(X, reset=True), y, sample_weight=sample_weight)

    def predict_proba(self, X):
        return super().predict_proba(self._as_texts(X, reset=False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.one_d_array = False
        tags.input_tags.string = False
        return tags


def check_name(check):
    return check.func.__name__ if isinstance(check, partial) else check.__name__


def check_id(check):
    keywords = getattr(check, "keywords", {})
    return check_name(check) + "".join(f"[{k}={v}]" for k, v in keywords.items())


def adapter_checks():
    if not hasattr(estimator_checks, "estimator_checks_generator"):  # scikit-learn < 1.6
        return []
    adapter = NumericRowsAsText(threads=1, dim=10, epoch=10, bucket=10_000)
    return [pytest.param(estimator, check, id=check_id(check))
            for estimator, check in estimator_checks.estimator_checks_generator(adapter)
            if check_name(check) not in API_CHECKS]


def test_sklearn_skips_every_check_for_string_input():
    """Why the checks below go through an adapter."""
    if not hasattr(estimator_checks, "estimator_checks_generator"):
        pytest.skip("scikit-learn < 1.6")
    with pytest.warns(UserWarning, match="Can't test estimator FastembedClassifier"):
        names = [check_name(c) for _, c in
                 estimator_checks.estimator_checks_generator(FastembedClassifier())]
    assert names == ["check_estimator_cloneable"]


@pytest.mark.parametrize("name", API_CHECKS)
def test_sklearn_api_check(name):
    check = getattr(estimator_checks, name, None)
    if check is None:
        pytest.skip(f"scikit-learn {__import__('sklearn').__version__} has no {name}")
    check("FastembedClassifier", FastembedClassifier(**SMALL))


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
@pytest.mark.parametrize("estimator, check", adapter_checks())
def test_sklearn_check_on_numeric_rows_as_text(estimator, check):
    name = check_name(check)
    if name in NOT_APPLICABLE:
        pytest.skip(NOT_APPLICABLE[name])
    if name in EXPECTED_TO_FAIL:
        with pytest.raises(AssertionError):
            check(estimator)
        pytest.xfail(EXPECTED_TO_FAIL[name])
    check(estimator)
