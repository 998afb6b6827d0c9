"""Where a training run's tables come from: fresh, a trained model (``init_model``) or a
checkpoint (``resume``); and the checkpoints a run writes (``checkpoint``).

* **Continued training** (``init_model``): the settings not given are the model's; those that
  shape its tables (:data:`LAYOUT`) must not differ. The new corpus's words, labels and n-gram
  buckets are added to the model's dictionary (word and label counts add up, and both stay
  sorted by count, so the merged dictionary is an ordinary one); every row already learned
  moves with its word, label or bucket, together with its optimizer accumulators. New rows
  start as a fresh run's would. The learning-rate schedule starts again from ``lr``. With
  ``pooling="tfidf"`` the document frequencies add up too, so the idf is that of both corpora.
* **Checkpoints**: at the end of every epoch the model is written (atomically) with its
  optimizer state and the run's state: epochs done, tokens and examples done, the summed loss,
  the shuffling generator's state and each thread's random stream, and a fingerprint of the
  encoded corpus. **Resuming** encodes the corpus with the checkpoint's dictionary (which
  gives exactly the rows the interrupted run trained on: the fingerprint checks it), restores
  that state, and runs the remaining epochs: with one thread, or ``deterministic=True``, the
  result is the uninterrupted run's, bit for bit.
"""

import os
import zlib
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from fastembed.errors import ArgumentError
from fastembed.model.classifier import Model
from fastembed.model.corpus_weights import corpus_weights, label_divergence
from fastembed.model.file_schema import VERSION, read_model
from fastembed.model.pooling import document_frequency, smooth_idf
from fastembed.model.workers import LOSS_SUM, SEEN, TOKENS
from fastembed.model_file import save_arrays
from fastembed.settings import TrainArgs
from fastembed.text import Dictionary, build_corpus
from fastembed.text import hashing as _hash
from fastembed.text.out_of_core import MappedCorpus
from fastembed.text.reader import read_bytes

__all__ = ["LAYOUT", "Checkpointer", "Origin", "settle"]

# Settings that shape the tables or the meaning of their rows: fixed by an init model.
LAYOUT = ("dim", "word_ngrams", "bucket", "minn", "maxn", "loss", "optimizer", "pooling",
          "label_prefix")
_RUN_PATHS = ("init_model", "checkpoint", "resume")
_CRC_BYTES = 64 << 20


@dataclass
class Origin:
    """Tables a run starts from: an init model (``resume`` None) or a checkpoint's model."""

    model: Model
    resume: SimpleNamespace = None  # the checkpoint's training state (file_schema._training_state)

    def prepare(self, source, args, cache_dir=None):
        """``(dictionary, corpus, tables)`` for training ``args`` on ``source``; ``cache_dir``
        only when resuming a run that encoded its corpus out of core."""
        if self.resume is not None:
            return self._resumed(source, args, cache_dir)
        if cache_dir is not None:
            raise ArgumentError("cache_dir is for fresh runs: init_model encodes the corpus in "
                                "memory with the model's dictionary")
        return self._continued(source, args)

    def _resumed(self, source, args, cache_dir):
        """The corpus encoded as the interrupted run encoded it: out of core (the same files,
        so the same block order of the epochs) or in memory with the checkpoint's dictionary."""
        model = self.model
        if self.resume.out_of_core:
            if not isinstance(source, (str, os.PathLike)):
                raise ArgumentError("resume: the checkpoint's run read its corpus out of core from "
                                    "a file: give that file")
            from fastembed.model.training import build_training_corpus

            dictionary, corpus = build_training_corpus(source, args, cache_dir, out_of_core=True)
            if not _same_dictionary(dictionary, model.dictionary):
                raise ArgumentError("resume: the corpus is not the one of the checkpoint (its "
                                    "dictionary differs)")
        elif cache_dir is not None:
            raise ArgumentError("cache_dir: the checkpoint's run encoded its corpus in memory, and "
                                "resuming it does too")
        else:
            corpus = model.dictionary.encode(source, keep_unlabelled=False, threads=args.n_threads)
        stored = self.resume.corpus
        if fingerprint(corpus) != stored:
            raise ArgumentError(
                f"resume: the corpus is not the one of the checkpoint ({corpus.n_lines} lines, "
                f"{corpus.total_tokens()} tokens; the checkpoint's run had {stored['lines']} "
                f"lines, {stored['tokens']} tokens)")
        return model.dictionary, corpus, _tables(args, model, corpus, model.idf)

    def _continued(self, source, args):
        base = self.model
        data = read_bytes(source)
        fresh, fresh_corpus = build_corpus(
            data, label_prefix=args.label_prefix, min_count=1, min_count_label=1,
            word_ngrams=args.word_ngrams, bucket=args.effective_bucket, minn=args.minn,
            maxn=args.maxn, min_count_ngram=1, threads=args.n_threads)
        merged, word_src, label_src = _merge_dictionaries(base.dictionary, fresh, fresh_corpus, args)
        del fresh_corpus
        corpus = merged.encode(data, keep_unlabelled=False, threads=args.n_threads)
        del data
        moved, label_factor = _moved_model(base, merged, word_src, label_src, args)
        idf = None
        if args.pooling == "tfidf":
            moved.doc_freq += document_frequency(corpus.indices, corpus.offsets, merged.n_rows)
            moved.documents += corpus.n_lines
            idf = smooth_idf(moved.doc_freq, moved.documents)
            if args.label_weighting > 0:  # rows of the new corpus: its labels; the others keep theirs
                divergence, seen = label_divergence(corpus, merged.n_rows, merged.nlabels, args.dim)
                label_factor[seen] = 1.0 + args.label_weighting * divergence[seen]
                idf = (idf * label_factor).astype(np.float32)
            idf[-1] = 0.0
        return merged, corpus, _tables(args, moved, corpus, idf)


def _same_dictionary(a, b):
    arrays_a, arrays_b = a.to_arrays(), b.to_arrays()
    return a.config() == b.config() and arrays_a.keys() == arrays_b.keys() and all(
        np.array_equal(arrays_a[k], arrays_b[k]) for k in arrays_a)


def _tables(args, model, corpus, idf):
    """The run's starting point: tables, optimizer state, idf, pooling weights, tf-idf counts."""
    weights = corpus_weights(args, corpus, model.input_matrix.shape[0], model.dictionary.nlabels, idf)[1]
    return SimpleNamespace(inp=model.input_matrix, out=model.output_matrix,
                           state=model.optimizer_state, idf=idf, weights=weights,
                           doc_freq=model.doc_freq, documents=model.documents)


def fingerprint(corpus):
    """Lines, tokens and a CRC-32 of the encoded corpus: what a resumed run must train on."""
    crc = 0
    release = getattr(corpus, "release_pages", lambda: None)  # a mapped corpus: bounded RSS
    for array in (corpus.indices, corpus.offsets, corpus.label_indices, corpus.label_offsets,
                  corpus.ntokens):
        raw = np.ascontiguousarray(array).view(np.uint8)
        for start in range(0, raw.size, _CRC_BYTES):  # the CRC of the pieces is the whole's
            crc = zlib.crc32(raw[start:start + _CRC_BYTES], crc)
            release()
    return {"lines": int(corpus.n_lines), "tokens": corpus.total_tokens(), "checksum": crc}


# -- settings ----------------------------------------------------------------------------------

def settle(preset, settings):
    """``(args, origin)``: the run's :class:`TrainArgs` and where its tables come from (an
    :class:`Origin`, or None for a fresh run), from ``train_supervised``'s keyword settings."""
    init = settings.get("init_model")
    if isinstance(init, Model):  # a Model in memory: TrainArgs holds paths only
        settings = dict(settings, init_model=None)
    args = TrainArgs.from_preset(preset, **settings)
    if args.resume is not None and init is not None:
        raise ArgumentError("give init_model or resume, not both (a checkpoint holds the model)")
    if args.resume is not None:
        return _resume_args(args, settings)
    if init is None:
        return args, None
    model = init if isinstance(init, Model) else Model.load(init)
    return _continue_args(args, settings, model), Origin(_continuable(model, init))


def _given(settings):
    return {k: v for k, v in settings.items() if v is not None and k not in _RUN_PATHS}


def _merged_args(stored, settings, fixed, why):
    """The stored settings with those given; ArgumentError when one of ``fixed`` differs."""
    values = stored.to_dict()
    for name, value in _given(settings).items():
        if name in fixed and value != values[name] and not (name == "loss" and value == "auto"):
            raise ArgumentError(f"{name}={value!r} differs from the {why}'s {name}="
                                f"{values[name]!r}; {name} cannot change when {fixed[name]}")
        if name != "loss" or value != "auto":
            values[name] = value
    args = TrainArgs.from_dict(values)
    for name in ("init_model", "checkpoint", "resume"):
        value = settings.get(name)
        setattr(args, name, value if isinstance(value, (str, os.PathLike)) else None)
    args.validate()
    return args


def _continue_args(args, settings, model):
    """An init model's settings, with those given (the table layout must not change)."""
    reason = "training continues (it shapes the tables)"
    return _merged_args(model.args, settings, dict.fromkeys(LAYOUT, reason), "init model")


def _continuable(model, given):
    if model.optimizer_state is None and model.args.optimizer == "sgd" and (
            model.args.pooling != "tfidf"):
        model.optimizer_state = _empty_state(model)  # SGD keeps no state: a version-1 file will do
    if not model.continuable:
        raise ArgumentError(
            f"init_model {given if isinstance(given, (str, os.PathLike)) else 'model'} holds no "
            f"optimizer state (saved by an older fastembed): it cannot continue training")
    return model


def _empty_state(model):
    return tuple((np.zeros((0, model.dim), np.float32), np.zeros(0, np.float32)) for _ in range(2))


def _resume_args(args, settings):
    """A checkpoint's settings: those given must agree (threads may differ)."""
    arrays, dims = read_model(args.resume)
    if dims.training is None:
        raise ArgumentError(f"resume: {os.fspath(args.resume)} is a model file, not a checkpoint "
                            f"(use init_model to continue training a model)")
    model = Model.from_file_arrays(arrays, dims, args.resume)
    state = dims.training
    state.history = model.train_stats.get("history", [])
    state.best_tables = (arrays["best.input_matrix"], arrays["best.output_matrix"]) if (
        "best.input_matrix" in arrays) else None
    reason = "resuming (the checkpoint's run used it)"
    fixed = {name: reason for name in dims.args.to_dict() if name != "threads"}
    return _merged_args(dims.args, settings, fixed, "checkpoint"), Origin(model, dims.training)


# -- merging a dictionary with a new corpus's ----------------------------------------------------

def _find(dictionary, fresh_pool, fresh_offsets):
    """Ids in ``dictionary`` (words, then labels after nwords) of a pool's entries; -1: absent."""
    table, bits, pool, offsets = dictionary._table()
    query = _hash.as_readonly_u8(fresh_pool)
    return _hash.lookup_entries(table, bits, pool, offsets, _hash.hash_entries(query, fresh_offsets),
                                query, fresh_offsets)


def _merge_dictionaries(base, fresh, fresh_corpus, args):
    """The model's dictionary plus the new corpus's words, labels and n-gram buckets."""
    words = _merge_side(base._wpool, base._woff, base.word_counts, fresh._wpool, fresh._woff,
                        fresh.word_counts, _find(base, fresh._wpool, fresh._woff), base.nwords,
                        args.min_count, False)
    found_labels = _find(base, fresh._lpool, fresh._loff)
    found_labels = np.where(found_labels >= base.nwords, found_labels - base.nwords, -1)
    if args.loss == "hs" and (found_labels < 0).any():
        raise ArgumentError("loss=hs: the corpus has labels the init model does not know, and its "
                            "Huffman tree cannot grow; continue with softmax or ova models")
    labels = _merge_side(base._lpool, base._loff, base.label_counts, fresh._lpool, fresh._loff,
                         fresh.label_counts, found_labels, base.nlabels, args.min_count_label,
                         args.loss == "hs")
    bucket_ids = base.bucket_ids
    if base.bucket > 0 and fresh.bucket_ids.size:
        rows = fresh_corpus.indices[fresh_corpus.indices >= fresh.nwords] - fresh.nwords
        counts = np.bincount(rows, minlength=fresh.bucket_ids.size + 1)[:fresh.bucket_ids.size]
        new = ~np.isin(fresh.bucket_ids, base.bucket_ids) & (counts >= args.min_count_ngram)
        bucket_ids = np.concatenate([base.bucket_ids, fresh.bucket_ids[new]]).astype(np.int32)
    merged = Dictionary(
        word_pool=words[0], word_offsets=words[1], word_counts=words[2], label_pool=labels[0],
        label_offsets=labels[1], label_counts=labels[2], ntokens=base.ntokens + fresh.ntokens,
        label_prefix=base.label_prefix, word_ngrams=base.word_ngrams, bucket=base.bucket,
        minn=base.minn, maxn=base.maxn, min_count=args.min_count,
        min_count_label=args.min_count_label, bucket_ids=bucket_ids)
    return merged, words[3], labels[3]


def _merge_side(old_pool, old_off, old_counts, new_pool, new_off, new_counts, found, n_old,
                min_count, keep_order):
    """Words or labels of the model and the corpus: ``(pool, offsets, counts, source)``."""
    counts = old_counts.copy()
    known = found >= 0
    if not keep_order:  # hs keeps its tree: its label counts and order stay the model's
        np.add.at(counts, found[known], new_counts[known])
    new = np.flatnonzero(~known & (new_counts >= min_count))
    all_counts = np.concatenate([counts, new_counts[new]])
    order = (np.arange(all_counts.size) if keep_order
             else np.argsort(-all_counts, kind="stable"))
    new_lengths = new_off[new + 1] - new_off[new]
    pool = np.concatenate([old_pool, new_pool])
    starts = np.concatenate([old_off[:-1], new_off[new] + old_pool.size]).astype(np.int64)
    lengths = np.concatenate([np.diff(old_off), new_lengths]).astype(np.int64)
    merged_lengths = lengths[order]
    offsets = np.zeros(order.size + 1, np.int64)
    np.cumsum(merged_lengths, out=offsets[1:])
    merged_pool = np.empty(int(offsets[-1]), np.uint8)
    take = np.repeat(starts[order] - offsets[:-1], merged_lengths) + np.arange(offsets[-1])
    merged_pool[:] = pool[take]
    source = np.concatenate([np.arange(n_old), np.full(new.size, -1)])[order]
    return merged_pool, offsets, all_counts[order], source


def _moved_model(base, merged, word_src, label_src, args):
    """The model's rows, accumulators and document counts at their rows of ``merged``; new
    rows as a fresh run starts them (the same random values, zero accumulators). Also the
    factor of ``label_weighting`` in the base's idf at the same rows (1 elsewhere)."""
    from fastembed.model.training import _init_tables, optimizer_state

    inp, out = _init_tables(args, merged)
    (inp_sums, out_sums) = (optimizer_state(args.optimizer, inp), optimizer_state(args.optimizer, out))
    old_state = base.optimizer_state
    new_words, old_words = np.flatnonzero(word_src >= 0), word_src[word_src >= 0]
    n_old_buckets = base.bucket_ids.size
    to_rows = np.concatenate([new_words, merged.nwords + np.arange(n_old_buckets)])
    from_rows = np.concatenate([old_words, base.dictionary.nwords + np.arange(n_old_buckets)])
    inp[to_rows] = base.input_matrix[from_rows]
    _move_state(inp_sums, old_state[0], to_rows, from_rows)
    if args.loss == "hs":
        out[:] = base.output_matrix
        to_out = from_out = np.arange(out.shape[0])
    else:
        to_out, from_out = np.flatnonzero(label_src >= 0), label_src[label_src >= 0]
        out[to_out] = base.output_matrix[from_out]
    _move_state(out_sums, old_state[1], to_out, from_out)
    doc_freq = None
    label_factor = np.ones(merged.n_rows, np.float64)
    if args.pooling == "tfidf":
        doc_freq = np.zeros(merged.n_rows, np.int64)
        doc_freq[to_rows] = base.doc_freq[from_rows]
        if base.args.label_weighting > 0:  # the base's idf over its plain idf
            plain = smooth_idf(base.doc_freq, base.documents)[from_rows].astype(np.float64)
            label_factor[to_rows] = np.divide(base.idf[from_rows], plain, out=np.ones_like(plain),
                                              where=plain > 0)
    model = Model(args, merged, inp, out, optimizer_state=(inp_sums, out_sums), doc_freq=doc_freq,
                  documents=base.documents)
    return model, label_factor


def _move_state(sums, old_sums, to_rows, from_rows):
    for new, old in zip(sums, old_sums):
        if new.shape[0]:
            new[to_rows] = old[from_rows]


# -- checkpoints -------------------------------------------------------------------------------

class Checkpointer:
    """Writes a run's checkpoint at the end of each epoch (see the module docstring)."""

    def __init__(self, path, args, dictionary, corpus, tables):
        self.path = path
        self.args = args
        self.dictionary = dictionary
        self.corpus = fingerprint(corpus)
        self.out_of_core = isinstance(corpus, MappedCorpus)
        self.tables = tables

    def __call__(self, trainer, epochs_done, shuffle_rng):
        workers = trainer.workers
        bit_generator = shuffle_rng.bit_generator.state
        training = {
            "epochs_done": int(epochs_done),
            "tokens_done": workers.tokens(),
            "examples_seen": int(workers.counters[:, SEEN].sum()),
            "loss_sum": float(workers.losses[:, LOSS_SUM].sum()),
            "corpus": self.corpus,
            "shuffle_rng": {"state": int(bit_generator["state"]["state"]),
                            "inc": int(bit_generator["state"]["inc"]),
                            "has_uint32": int(bit_generator["has_uint32"]),
                            "uinteger": int(bit_generator["uinteger"])},
            "thread_rng": [int(x) for x in trainer.rng_states],
            "out_of_core": self.out_of_core,
        }
        best, best_tables = trainer.monitor.checkpoint_state(epochs_done)
        if best is not None:
            training["best"] = best
        t = self.tables
        model = Model(self.args, self.dictionary, trainer.inp, trainer.out, idf=t.idf,
                      optimizer_state=(trainer.inp_state, trainer.out_state),
                      doc_freq=t.doc_freq, documents=t.documents,
                      train_stats={"history": trainer.monitor.history})
        arrays, meta = model.file_contents(training)
        if best_tables is not None:
            arrays.update({"best.input_matrix": best_tables[0], "best.output_matrix": best_tables[1]})
        save_arrays(self.path, arrays, meta, version=VERSION)


def restore(trainer, resume, shuffle_rng):
    """Put a checkpoint's run state into ``trainer`` and ``shuffle_rng``; returns epochs done."""
    rng = resume.shuffle_rng
    shuffle_rng.bit_generator.state = {
        "bit_generator": "PCG64", "state": {"state": rng["state"], "inc": rng["inc"]},
        "has_uint32": rng["has_uint32"], "uinteger": rng["uinteger"]}
    streams = np.array(resume.thread_rng, dtype=np.uint64)
    n = min(streams.size, trainer.rng_states.size)
    trainer.rng_states[:n] = streams[:n]
    workers = trainer.workers
    workers.counters[0, TOKENS] = resume.tokens_done  # the totals go to thread 0's row
    workers.counters[0, SEEN] = resume.examples_seen
    workers.losses[0, LOSS_SUM] = resume.loss_sum
    trainer.monitor.resume(resume, (trainer.inp, trainer.out))
    return resume.epochs_done
