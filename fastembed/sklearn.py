"""A scikit-learn classifier on top of fastembed: :class:`FastembedClassifier`.

Needs the ``sklearn`` extra (``pip install 'fastembed[sklearn]'``). The estimator takes raw
texts: ``X`` is a sequence of strings, one sample each, so it goes first in a
:class:`~sklearn.pipeline.Pipeline` or after text-to-text steps such as a
:class:`~sklearn.preprocessing.FunctionTransformer`.

Training goes through :func:`fastembed.train_supervised` with ``texts=`` and ``labels=``; every
fitted model is a plain :class:`fastembed.Model` (``model_``), and a pickle of the estimator
holds that model's file bytes, never a graph of Python objects.
"""

import os
import tempfile
from itertools import chain

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.preprocessing import MultiLabelBinarizer
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import (
        check_consistent_length,
        check_is_fitted,
        column_or_1d,
    )
except ImportError as exc:
    raise ImportError("fastembed.sklearn needs scikit-learn: pip install 'fastembed[sklearn]'") from exc

import fastembed
from fastembed.settings import SETTINGS, TrainArgs

__all__ = ["MULTILABEL_THRESHOLD", "FastembedClassifier"]

MULTILABEL_THRESHOLD = 0.5
"""On multi-label data, ``predict`` sets a label when its probability exceeds this."""

# the run-only paths (init_model, checkpoint, resume) are not estimator parameters
SETTING_NAMES = tuple(s.name for s in SETTINGS if s.stored)
# the non-setting keywords of train_supervised that the estimator takes too
EXTRA_PARAMS = ("preset", "verbose")

_TINY = np.finfo(np.float64).tiny


class FastembedClassifier(ClassifierMixin, BaseEstimator):
    """fastembed's text classifier as a scikit-learn estimator.

    Parameters
    ----------
    preset : {"fastembed", "fasttext"}, optional
        Where the settings left at None come from, as in :func:`fastembed.train_supervised`.
    lr, dim, epoch, word_ngrams, bucket, min_count, min_count_label, min_count_ngram, minn, maxn, \
loss, optimizer, pooling, threads, seed, label_prefix
        The training settings of :func:`fastembed.train_supervised`, same names and meaning;
        None takes the preset's value. ``threads=None`` (the presets' 0) trains on every core:
        inside ``GridSearchCV(n_jobs=2)`` or ``cross_val_score(n_jobs=...)`` each worker would
        then use every core, so set ``threads=1`` there. With ``threads=1`` and a fixed ``seed``
        a fit is bit-for-bit repeatable. ``label_prefix`` is the prefix of the label tokens the
        estimator writes; tokens of the texts that start with it are dropped before training
        (prediction ignores them too).
    verbose : int, default 0
        0 trains silently (unlike ``train_supervised``, whose default 1 reports progress).

    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted (as :class:`~sklearn.preprocessing.LabelEncoder`); for
        multi-label ``y``, as :class:`~sklearn.preprocessing.MultiLabelBinarizer` would have
        them (the sorted labels of label lists, or ``arange(n_columns)`` for an indicator matrix).
    multilabel_ : bool
        Whether ``y`` was multi-label.
    model_ : fastembed.Model
        The trained model; its labels are ``label_prefix + str(i)`` for ``classes_[i]``.

    Notes
    -----
    Single-label ``y``: ``predict_proba`` rows sum to 1 (``ova`` probabilities are normalised,
    as :class:`~sklearn.multiclass.OneVsRestClassifier` does); ``predict`` is their argmax.
    Multi-label ``y`` (a 2-D 0/1 array or a list of label lists) trains ``loss="ova"`` (what
    ``loss="auto"`` means there; ``softmax`` and ``hs`` are refused); ``predict`` returns a
    0/1 indicator matrix, 1 where the label's probability exceeds 0.5. Samples without any
    label take no part in training (fastText's format cannot express them).

    ``decision_function`` gives log-probabilities, since the public model gives probabilities,
    not the raw scores: for softmax they differ from the raw scores by a per-row constant,
    which changes neither the argmax nor the ranking within a row. Binary: the log-odds
    ``log p1 - log p0``, shape (n,) (for softmax exactly the raw score difference). Multi-label:
    each label's log-odds ``log p - log(1 - p)`` (for ova exactly its raw score), so
    ``predict`` is ``decision_function > 0``.

    ``sample_weight`` takes non-negative weights: a sample's weight multiplies its learning
    rate inside the training kernel (under SGD, the gradient of the weighted loss); zero drops
    the sample. A weight of w is one step w times as long, not w copies of the sample (which
    would make w steps), so a fit costs the same whatever the weights.
    """

    def __init__(self, *, preset=None, lr=None, dim=None, epoch=None, word_ngrams=None,
                 bucket=None, min_count=None, min_count_label=None, min_count_ngram=None,
                 minn=None, maxn=None, loss=None, optimizer=None, pooling=None,
                 label_weighting=None, threads=None, seed=None, label_prefix=None,
                 deterministic=None, verbose=0):
        self.preset = preset
        self.lr = lr
        self.dim = dim
        self.epoch = epoch
        self.word_ngrams = word_ngrams
        self.bucket = bucket
        self.min_count = min_count
        self.min_count_label = min_count_label
        self.min_count_ngram = min_count_ngram
        self.minn = minn
        self.maxn = maxn
        self.loss = loss
        self.optimizer = optimizer
        self.pooling = pooling
        self.label_weighting = label_weighting
        self.threads = threads
        self.seed = seed
        self.label_prefix = label_prefix
        self.deterministic = deterministic
        self.verbose = verbose

    # -- training ------------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Train on texts ``X`` and labels ``y``.

        Parameters
        ----------
        X : sequence of str
            One text per sample; newlines inside a text are read as spaces.
        y : array-like of shape (n,), a 0/1 array of shape (n, n_classes), or a list of label lists
        sample_weight : array-like of shape (n,) of non-negative numbers, optional
            Multiplies each sample's learning rate (see :func:`fastembed.train_supervised`).

        Returns
        -------
        self
        """
        args = self._training_args()
        texts = _texts(X)
        if y is None:
            raise ValueError("FastembedClassifier requires y to be passed, but the target y is None")
        check_consistent_length(texts, y)
        classes, label_columns, multilabel = _read_targets(y)
        weights = None if sample_weight is None else _sample_weights(sample_weight, len(texts))
        if multilabel:
            if args.loss not in ("auto", "ova"):
                raise ValueError(f"multi-label y needs loss='ova' (or 'auto'), got loss={args.loss!r}")
            args.loss = "ova"
        else:
            trained = label_columns if weights is None else label_columns[weights > 0]
            n_trained = np.unique(trained).size
            if n_trained < 2:
                raise ValueError(f"FastembedClassifier needs samples of at least 2 classes "
                                 f"(with positive weight); got {n_trained} class")
        self.model_ = _train(texts, label_columns, weights, args, self.verbose)
        self.classes_ = classes
        self.multilabel_ = multilabel
        self._label_prefix = args.label_prefix
        return self

    def _training_args(self):
        """The resolved settings of a fit (validated: bad values raise before any work)."""
        given = {name: getattr(self, name) for name in SETTING_NAMES}
        return TrainArgs.from_preset(self.preset, **given)

    # -- prediction ----------------------------------------------------------------------------

    def predict_proba(self, X):
        """Class probabilities, shape (n, n_classes), columns in ``classes_`` order."""
        proba = self._model_probabilities(X)
        if not self.multilabel_:
            sums = proba.sum(axis=1, keepdims=True)
            empty = sums[:, 0] == 0  # every probability underflowed: spread evenly
            proba[empty] = self._trained_columns()
            proba /= np.where(empty[:, None], proba.sum(axis=1, keepdims=True), sums)
        return proba

    def predict_log_proba(self, X):
        """The log of :meth:`predict_proba` (floored at the log of the smallest float)."""
        return np.log(np.maximum(self.predict_proba(X), _TINY))

    def decision_function(self, X):
        """Log-probabilities (n, n_classes); binary: log-odds (n,); multi-label: log-odds per label."""
        proba = self.predict_proba(X)
        if self.multilabel_:
            p = np.clip(proba, _TINY, np.nextafter(1.0, 0.0))
            return np.log(p) - np.log1p(-p)
        log_proba = np.log(np.maximum(proba, _TINY))
        if len(self.classes_) == 2:
            return log_proba[:, 1] - log_proba[:, 0]
        return log_proba

    def predict(self, X):
        """Labels of ``X``: ``classes_`` values, or a 0/1 matrix (n, n_classes) for multi-label."""
        proba = self.predict_proba(X)
        if self.multilabel_:
            return (proba > MULTILABEL_THRESHOLD).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy; subset accuracy (every label right) for multi-label, as ClassifierMixin."""
        check_is_fitted(self)
        if self.multilabel_ and not _is_indicator(y):
            y = MultiLabelBinarizer(classes=self.classes_).fit_transform(y)
        return super().score(X, y, sample_weight=sample_weight)

    def _model_probabilities(self, X):
        """The model's probabilities of every class, (n, n_classes) float64, from public predict."""
        check_is_fitted(self)
        texts = _texts(X)
        results = self.model_.predict_lines(texts, k=-1)
        prefix = self._label_prefix
        column_of = {label: int(label[len(prefix):]) for label in self.model_.labels}
        per_line = np.fromiter((len(labels) for labels, _ in results), np.int64, len(results))
        columns = np.fromiter(map(column_of.__getitem__, chain.from_iterable(l for l, _ in results)),
                              np.int64, int(per_line.sum()))
        proba = np.zeros((len(texts), len(self.classes_)), dtype=np.float64)
        if columns.size:
            rows = np.repeat(np.arange(len(texts)), per_line)
            proba[rows, columns] = np.concatenate([p for _, p in results])
        return proba

    def _trained_columns(self):
        """1.0 in the columns of the classes the model knows, else 0.0."""
        known = np.zeros(len(self.classes_))
        known[[int(label[len(self._label_prefix):]) for label in self.model_.labels]] = 1.0
        return known

    # -- pickling: the model travels as its file's bytes -------------------------------------------

    def __getstate__(self):
        state = dict(super().__getstate__())  # may be self.__dict__ itself: copy before editing
        model = state.pop("model_", None)
        if model is not None:
            state["_model_file"] = _model_file_bytes(model)
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop("_model_file", None)
        if data is not None:
            state["model_"] = _model_from_bytes(data)
        super().__setstate__(state)

    # -- scikit-learn tags ------------------------------------------------------------------------

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.target_tags.required = True
        # hogwild threads race; deterministic=True gives one model for any thread count
        tags.non_deterministic = self.threads != 1 and not self.deterministic
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"X_types": ["string"], "multilabel": True, "requires_y": True,
                "non_deterministic": self.threads != 1 and not self.deterministic}


# -- inputs -----------------------------------------------------------------------------------


def _texts(X):
    """``X`` as a list of one-line strings."""
    if isinstance(X, (str, bytes)):
        raise TypeError("X must be a sequence of texts (one str per sample), got a single "
                         f"{type(X).__name__}")
    if getattr(X, "ndim", 1) != 1:
        raise ValueError(f"X must be a 1-D sequence of str, got an array of shape {X.shape}")
    texts = list(X)
    if not texts:
        raise ValueError("X holds 0 samples: FastembedClassifier needs at least 1")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"X must hold str, got {type(text).__name__} at index {i}")
    return [text.replace("\n", " ") if "\n" in text else text for text in texts]


def _is_indicator(y):
    try:
        return type_of_target(y) == "multilabel-indicator"
    except ValueError:  # ragged label lists
        return False


def _is_label_lists(y):
    """A list (or 1-D object array, Series) whose items are collections of labels."""
    if not isinstance(y, (list, tuple)):
        if not hasattr(y, "__array__"):
            return False
        y = np.asarray(y)
        if y.ndim != 1 or y.dtype != object:
            return False
    return len(y) > 0 and all(isinstance(item, (list, tuple, set, frozenset, np.ndarray))
                              for item in y)


def _read_targets(y):
    """(classes_, label columns, multilabel): an int array (n,), or a list of int arrays."""
    if _is_indicator(y):
        indicator = y.toarray() if hasattr(y, "toarray") else np.asarray(y)
        rows, cols = np.nonzero(indicator)
        bounds = np.searchsorted(rows, np.arange(indicator.shape[0] + 1))
        return np.arange(indicator.shape[1]), np.split(cols, bounds[1:-1]), True
    if _is_label_lists(y):
        binarizer = MultiLabelBinarizer(sparse_output=True).fit(y)
        indicator = binarizer.transform(y).tocsr()
        indicator.sort_indices()  # labels in column order, as from an indicator matrix
        columns = np.split(indicator.indices, indicator.indptr[1:-1])
        return binarizer.classes_, columns, True
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    classes, columns = np.unique(y, return_inverse=True)
    return classes, columns.reshape(-1), False


def _sample_weights(sample_weight, n):
    """Validated weights, float64."""
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {weights.shape}")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("sample_weight must be finite and non-negative")
    if not (weights > 0).any():
        raise ValueError("sample_weight is zero everywhere: weights must contain at least one "
                         "non-zero number")
    return weights


def _train(texts, label_columns, sample_weight, args, verbose):
    """The one call of train_supervised: label ``c`` is ``<prefix>c``; a sample's weight
    multiplies its learning rate inside the training kernel."""
    settings = {name: getattr(args, name) for name in SETTING_NAMES}
    return fastembed.train_supervised(texts=texts, labels=label_columns, sample_weight=sample_weight,
                                      preset=args.preset, verbose=verbose, **settings)


# -- the model as bytes ------------------------------------------------------------------------


def _model_file_bytes(model):
    with tempfile.TemporaryDirectory(prefix="fastembed-pickle-") as directory:
        path = os.path.join(directory, "model.fe")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def _model_from_bytes(data):
    with tempfile.TemporaryDirectory(prefix="fastembed-pickle-") as directory:
        path = os.path.join(directory, "model.fe")
        with open(path, "wb") as f:
            f.write(data)
        return fastembed.load_model(path)
