"""Dask: predict on a dask collection, and train across the workers of a cluster.

Needs the optional extra ``fastembed[dask]`` (dask, distributed).

Prediction
----------
:func:`predict` maps :meth:`Model.predict <fastembed.model.classifier.Model.predict>` over the
partitions of a dask Series or Bag of str. The model file's bytes are one key of the graph
(``dask.delayed(..., pure=True)``): each worker receives them once per computation, not once
per task (scattered to every worker up front when a distributed client is active), and loads
the model once per process (cached by the bytes' SHA-256, checked as any model file is). The
results equal in-process ``predict``.

Training: iterative parameter mixing
------------------------------------
:func:`train_supervised` trains on a dask DataFrame with a text and a label column:

1. the dictionary comes from a map-reduce: each partition counts its words and labels (the
   same scanner as :func:`~fastembed.text.build_corpus`), the counts are merged in partition
   order, so ids and tie-breaks equal a single-process run on the concatenated partitions;
2. a second map-reduce counts the hashed n-gram buckets each partition uses (and, for tf-idf
   pooling, the document frequencies and the label counts of ``label_weighting``), so bucket
   rows, ``min_count_ngram`` pruning and the idf are the single-process ones too;
3. the partitions are split into one group per worker, each group encoded once and kept in
   its worker's memory (``persist``); every epoch, each group trains hogwild on its worker (the
   ordinary trainer, ``threads`` threads, the learning rate following the global linear
   schedule) from the same tables, and the client averages the tables, weighted by tokens
   (iterative parameter mixing, McDonald et al. 2010).

The trade-off against single-machine training: each worker sees only its share of the data
between two averages, so an epoch of W workers is worth less than an epoch on one machine
(averaging damps each worker's progress); it can need an epoch or two more for the same
accuracy. Every epoch ships both tables to every worker and back (``2 W`` table copies through
the client), which dominates for large tables and small partitions. It pays when the corpus
does not fit one machine or its encoding is the bottleneck; on one machine, the threads of
:func:`fastembed.train_supervised` share the tables without any of this. Only ``optimizer="sgd"``
is supported: adaptive optimizer states would need averaging too.

Failures: a task lost with its worker is recomputed by dask (its inputs are pure: the encoded
group and the tables of the previous epoch), so a retried epoch gives the same tables. When
dask gives up (``distributed.scheduler.allowed-failures``), :class:`DistributedTrainingError`
is raised; no model is returned from a partial epoch.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
import time

import numpy as np

try:
    import dask
    import dask.bag as db
    import dask.dataframe as dd
    import pandas as pd
except ImportError as exc:  # pragma: no cover - the extra is absent
    raise ImportError("fastembed.dask needs the optional extra: pip install 'numba-fastembed[dask]'") from exc

from fastembed.errors import ArgumentError, FastembedError
from fastembed.model.classifier import Model
from fastembed.model.label_informativeness import (
    apply_label_weighting,
    corpus_block_counts,
    label_line_counts,
    row_divergence,
)
from fastembed.model.pooling import bag_weights, document_frequency, smooth_idf
from fastembed.model.training import _init_tables, _Trainer
from fastembed.model.workers import TOKENS
from fastembed.settings import TrainArgs
from fastembed.text import scan as _scan
from fastembed.text import ngram_rows as _rows
from fastembed.text.building import dictionary_from_entries
from fastembed.text.dictionary import _EOS_B, Dictionary, _check_settings, _ro

__all__ = ["DistributedTrainingError", "predict", "train_supervised"]


class DistributedTrainingError(FastembedError, RuntimeError):
    """Distributed training failed (a worker lost for good, a task error); no model was made."""


# ------------------------------------------------------------------------------- prediction

_models = {}  # per worker process: SHA-256 of a model file's bytes -> Model
_models_lock = threading.Lock()
_loads = 0  # model files loaded by this process (what the tests read through client.run)


def _model_bytes(model):
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            return f.read()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.fe")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def _cached_model(blob):
    """The model of a file's bytes, loaded once per process (validated by Model.load)."""
    global _loads
    digest = hashlib.sha256(blob).hexdigest()
    with _models_lock:
        model = _models.get(digest)
        if model is None:
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "model.fe")
                with open(path, "wb") as f:
                    f.write(blob)
                model = _models[digest] = Model.load(path)
            _loads += 1
    return model


def _predict_texts(texts, blob, k, threshold):
    return _cached_model(blob).predict(list(texts), k=k, threshold=threshold)


def _predict_series(part, blob, k, threshold):
    return pd.Series(_predict_texts(part.tolist(), blob, k, threshold), index=part.index,
                     name=part.name, dtype=object)


def predict(model, texts, k=1, threshold=0.0):
    """Predict every text of a dask Series or Bag of str.

    Parameters
    ----------
    model : Model or path to a model file
    texts : dask.dataframe.Series or dask.bag.Bag of str (one line each, no newline inside)
    k, threshold : as :meth:`Model.predict`.

    Returns
    -------
    A dask Series (same index) or Bag of ``(labels, probs)`` pairs, as :meth:`Model.predict`
    returns for each line.
    """
    blob = _to_every_worker(_model_bytes(model))  # sent to each worker once
    if isinstance(texts, db.Bag):
        return texts.map_partitions(_predict_texts, blob, k, threshold)
    if isinstance(texts, dd.Series):
        return texts.map_partitions(_predict_series, blob, k, threshold,
                                    meta=pd.Series([], dtype=object, name=texts.name))
    raise ArgumentError(f"texts must be a dask Series or Bag of str, got {type(texts).__name__}")


# --------------------------------------------------------------------------------- training

def _corpus_bytes(part, text, label, prefix):
    """The partition as fastText-format lines: labels (prefixed, whitespace-separated) then text."""
    pre = prefix.decode("utf-8", "surrogateescape")
    lines = []
    for lab, txt in zip(part[label].tolist(), part[text].tolist()):
        labels = " ".join(x if x.startswith(pre) else pre + x for x in str(lab).split())
        lines.append(f"{labels} {' '.join(str(txt).split())}\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


def _count_tokens(part, text, label, prefix):
    """Map: ``{token bytes: count}`` of a partition, first appearance first; and its line count."""
    data = _ro(np.frombuffer(_corpus_bytes(part, text, label, prefix), np.uint8))
    # one thread: dask runs its tasks side by side, one per worker thread
    _, line_end, _, e_count, _, e_off, pool = _scan.scan_corpus(
        data, _ro(np.frombuffer(prefix, np.uint8)), _ro(np.frombuffer(_EOS_B, np.uint8)), threads=1)
    raw, off = pool.tobytes(), e_off.tolist()
    return dict(zip((raw[off[i]:off[i + 1]] for i in range(len(off) - 1)), e_count.tolist())), len(line_end)


def _merge_counts(left, right):
    """Reduce: counts added, keys in first-appearance order of ``left`` then ``right``."""
    merged = dict(left[0])
    for key, n in right[0].items():
        merged[key] = merged.get(key, 0) + n
    return merged, left[1] + right[1]


def _tree(items, combine):
    """Pairwise reduction of delayed ``items`` that keeps their order."""
    while len(items) > 1:
        items = [dask.delayed(combine)(items[i], items[i + 1]) if i + 1 < len(items) else items[i]
                 for i in range(0, len(items), 2)]
    return items[0]


def _dictionary(arrays):
    return Dictionary.from_arrays(arrays)


def _bucket_counts(part, text, label, prefix, dict_arrays):
    """Map: ``{bucket: uses}`` of a partition's bags, first appearance first."""
    d = _dictionary(dict_arrays)
    no_map = (np.zeros(0, np.uint64), 0, 0)
    enc = d._encode(_corpus_bytes(part, text, label, prefix), False, no_map, threads=1)  # one task
    bucket_ids, counts = _rows.assign_rows(enc.indices, d.nwords, d.bucket)
    return dict(zip(bucket_ids.tolist(), counts.tolist())), 0


def _encode_group(parts, text, label, prefix, dict_arrays, n_rows, tfidf):
    """A worker's share: its partitions encoded as one corpus, the df of its bags, its tokens."""
    d = _dictionary(dict_arrays)
    corpus = d.encode(b"".join(_corpus_bytes(p, text, label, prefix) for p in parts), threads=1)  # one task
    df = document_frequency(corpus.indices, corpus.offsets, n_rows).astype(np.int64) if tfidf else None
    multi = corpus.has_multi_label_line()
    return corpus, df, multi, label_line_counts(corpus.label_indices, corpus.label_offsets, d.nlabels)


def _label_counts(group, first, stop, n_rows, dtype):
    """A group's share of the label x row counts of labels ``first..stop-1`` (label_weighting)."""
    c = group[0]
    return corpus_block_counts(lambda: [(c.indices, c.offsets, c.label_indices, c.label_offsets)],
                               n_rows)(first, stop, dtype)


def _train_group(group, dict_arrays, args_dict, inp, out, idf, epoch, seed):
    """One epoch of one group's share, from the given tables; returns the trained tables."""
    corpus = group[0]
    d = _dictionary(dict_arrays)
    args = TrainArgs(**dict(args_dict, epoch=1, seed=seed))
    inp, out = np.array(inp, dtype=np.float32), np.array(out, dtype=np.float32)
    weights = bag_weights(args.pooling, corpus.indices, corpus.offsets, idf)
    trainer = _Trainer(args, d, corpus, inp, out, weights, verbose=0)
    # the global linear schedule: this epoch starts where the previous ones left the lr
    trainer.tokens_total = float(max(trainer.epoch_tokens * args_dict["epoch"], 1))
    trainer.workers.counters[0, TOKENS] = epoch * trainer.epoch_tokens
    trainer.run()
    return inp, out, trainer.epoch_tokens, trainer.last_loss


def _submitted(epoch):
    """Called once the tasks of ``epoch`` are submitted (a hook for tests)."""


def train_supervised(ddf, text="text", label="label", *, n_groups=None, preset=None, verbose=1,
                     **settings):
    """Train a classifier on a dask DataFrame across the workers of the current dask scheduler.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
    text, label : str
        Columns: the text of each row, and its label(s) (whitespace-separated; the label prefix
        is added where missing).
    n_groups : int, optional
        Shares trained in parallel: by default the number of workers of the current
        distributed client (1 without one), at most the number of partitions.
    preset, settings : as :func:`fastembed.train_supervised`. ``threads`` is per worker
        (default: the worker's own thread count).
    verbose : int
        1: one line per epoch on stderr.

    Returns
    -------
    Model
    """
    if not isinstance(ddf, dd.DataFrame):
        raise ArgumentError(f"ddf must be a dask DataFrame, got {type(ddf).__name__}")
    for col in (text, label):
        if col not in ddf.columns:
            raise ArgumentError(f"ddf has no column {col!r}")
    client = _client()
    if settings.get("threads") in (None, 0):
        settings["threads"] = min(client.nthreads().values()) if client else 1
    args = TrainArgs.from_preset(preset, **settings)
    if args.init_model is not None or args.checkpoint is not None or args.resume is not None:
        raise ArgumentError("fastembed.dask.train_supervised takes no init_model, checkpoint or "
                            "resume (continue or checkpoint with fastembed.train_supervised)")
    if args.optimizer != "sgd":
        raise ArgumentError("fastembed.dask.train_supervised supports optimizer='sgd' only")
    pre, word_ngrams, bucket, minn, maxn = _check_settings(
        args.label_prefix, args.word_ngrams, args.effective_bucket, args.minn, args.maxn)
    t_start = time.perf_counter()
    parts = ddf[[text, label]].to_delayed()
    try:
        return _train(parts, text, label, pre, args, word_ngrams, bucket, minn, maxn, n_groups,
                      client, verbose, t_start)
    except FastembedError:
        raise
    except Exception as exc:  # a lost worker (KilledWorker), a task error, a lost connection
        raise DistributedTrainingError(
            f"distributed training failed, no model was made: {type(exc).__name__}: {exc}") from exc


def _graph_value(value):
    """``value`` as one key of the graph: every task that needs it shares that key."""
    return dask.delayed(value, pure=True)


def _to_every_worker(value):
    """``value`` scattered to every worker when a distributed client is active, else a graph key.

    Under a key of its own (``hash=False``): with the default content hash, a second call with
    the same bytes reuses the key of the first call's future, and when that future is released
    (its collection computed and dropped) the scheduler can forget the data just as the second
    computation needs it (seen once in CI: FutureCancelledError, "lost dependencies").
    """
    client = _client()
    return client.scatter([value], broadcast=True, hash=False)[0] if client is not None else _graph_value(value)


def _client():
    try:
        from distributed import get_client
        return get_client()
    except (ImportError, ValueError):
        return None


def _train(parts, text, label, pre, args, word_ngrams, bucket, minn, maxn, n_groups, client,
           verbose, t_start):
    count = dask.delayed(_count_tokens, pure=True)
    counts, n_lines = _tree([count(p, text, label, pre) for p in parts], _merge_counts).compute()
    keys = list(counts)
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    e_off = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    e_count = np.fromiter(counts.values(), dtype=np.int64, count=len(keys))
    e_label = np.fromiter((k.startswith(pre) for k in keys), dtype=np.uint8, count=len(keys))
    pool = np.frombuffer(b"".join(keys), dtype=np.uint8)
    d, _, _ = dictionary_from_entries(
        "<dask DataFrame>", (None, e_count, e_label, e_off, pool), n_lines, label_prefix=pre,
        min_count=args.min_count, min_count_label=args.min_count_label, word_ngrams=word_ngrams,
        bucket=bucket, minn=minn, maxn=maxn)
    # Large values go into the graph once each (one key, not one copy per task). Not scattered:
    # scattered data has no lineage, so a worker lost with the only copy would fail the run
    # (measured: FutureCancelledError); a key of the graph is sent again by the scheduler.
    share = _graph_value
    if d.bucket > 0:
        arrays = share(d.to_arrays())
        buckets = dask.delayed(_bucket_counts, pure=True)
        used, _ = _tree([buckets(p, text, label, pre, arrays) for p in parts], _merge_counts).compute()
        d._set_bucket_ids(np.array([b for b, n in used.items() if n >= args.min_count_ngram], np.int32))
    dict_arrays = share(d.to_arrays())
    n_groups = max(1, min(n_groups or (len(client.nthreads()) if client else 1), len(parts)))
    shares = [parts[g::n_groups] for g in range(n_groups)]
    tfidf = args.pooling == "tfidf"
    groups = dask.persist(*[dask.delayed(_encode_group, pure=True)(
        s, text, label, pre, dict_arrays, d.n_rows, tfidf) for s in shares])
    summaries = dask.compute(*[dask.delayed(lambda g: (g[0].n_lines, g[1], g[2], g[3]))(g) for g in groups])
    n_docs = sum(s[0] for s in summaries)
    args.resolve_loss(multi_label=any(s[2] for s in summaries))
    idf = None
    if tfidf:
        idf = smooth_idf(sum(s[1] for s in summaries), n_docs)
        if args.label_weighting > 0:  # the counts of each block of labels summed over the groups
            counts = dask.delayed(_label_counts, pure=True)

            def block_counts(first, stop, dtype):  # the dtype holds the whole corpus's counts
                return sum(dask.compute(*[counts(g, first, stop, d.n_rows, dtype) for g in groups]))
            divergence, _ = row_divergence(block_counts, sum(s[3] for s in summaries), d.n_rows, args.dim)
            idf = apply_label_weighting(idf, args.label_weighting, divergence)
        idf[-1] = 0.0  # the unseen-bucket row, as in fastembed.model.training
    inp, out = _init_tables(args, d)
    args_dict = args.to_dict()
    read_s = time.perf_counter() - t_start
    train = dask.delayed(_train_group, pure=True)
    loss = float("nan")
    idf_shared = share(idf)
    for epoch in range(args.epoch):
        tables = share(inp), share(out)
        results = [train(g, dict_arrays, args_dict, tables[0], tables[1], idf_shared, epoch,
                         args.seed + epoch * n_groups + i) for i, g in enumerate(groups)]
        futures = dask.persist(*results)
        _submitted(epoch)
        results = dask.compute(*futures)
        inp, out, loss = _average(results, inp.shape, out.shape)
        if verbose:
            print(f"epoch {epoch + 1}/{args.epoch}: loss {loss:.4f} ({n_groups} groups)", flush=True,
                  file=sys.stderr)
    stats = {"read_s": read_s, "total_s": time.perf_counter() - t_start, "examples": int(n_docs),
             "words": int(d.nwords), "labels": int(d.nlabels), "groups": int(n_groups),
             "final_loss": loss}
    return Model(args, d, inp, out, idf=idf, train_stats=stats)


def _average(results, inp_shape, out_shape):
    """Token-weighted mean of the groups' tables; checks that every group returned whole tables."""
    inp = np.zeros(inp_shape, np.float64)
    out = np.zeros(out_shape, np.float64)
    total = sum(r[2] for r in results)
    loss = 0.0
    for g_inp, g_out, tokens, g_loss in results:
        if g_inp.shape != inp_shape or g_out.shape != out_shape:
            raise DistributedTrainingError("a worker returned tables of the wrong shape")
        w = tokens / total
        inp += w * g_inp
        out += w * g_out
        loss += w * g_loss
    if not (np.isfinite(inp).all() and np.isfinite(out).all()):
        raise DistributedTrainingError("training diverged on a worker: try a smaller learning rate")
    return inp.astype(np.float32), out.astype(np.float32), loss
