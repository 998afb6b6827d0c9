"""Training: corpus to dictionary and bags, then hogwild SGD in Numba on worker threads.

Worker threads (:mod:`fastembed.model.workers`) run the Numba kernel
(:func:`fastembed.model.train_step.chunk_kernel`) on chunks of each epoch, never waiting for
each other; the main thread polls them for progress (:mod:`fastembed.model.progress`: the bar
and the callback), Ctrl-C and divergence; the end of an epoch is where validation and early
stopping (:mod:`fastembed.model.validation`) run.
"""

import inspect
import math
import os
import time
from functools import partial

import numpy as np

from fastembed.errors import ArgumentError, TrainingDiverged
from fastembed.model import continuation, deterministic
from fastembed.model.classifier import Model
from fastembed.model.corpus_weights import corpus_weights
from fastembed.model.heap import limit_heap_retention, release_free_memory
from fastembed.model.huffman import tree_arrays
from fastembed.model.progress import Progress
from fastembed.model.rng import init_uniform
from fastembed.model.train_step import chunk_kernel
from fastembed.model.validation import EpochMonitor, Validation, valid_source
from fastembed.model.weights import NO_WEIGHTS, example_weights
from fastembed.model.workers import LOSS_SUM, SEEN, Workers, thread_local_arrays
from fastembed.settings import (
    RUN_SETTINGS,
    SETTINGS,
    autotune_docstring_table,
    docstring_table,
)
from fastembed.text import build_corpus
from fastembed.text.corpus_cache import load_corpus
from fastembed.text.memory import training_source
from fastembed.text.out_of_core import use_out_of_core

# A worker's chunk: about _CHUNK_WORK multiply-adds of pooling and output layer (a few ms at
# the ~100 ns per bag row of dim 100 measured on SST-2), so that the Python call per chunk
# (10-20 us measured) is lost in it, and that after Ctrl-C the workers stop within
# milliseconds; _EXAMPLE_OVERHEAD stands for the fixed cost of an example in the same units.
# At least _MIN_CHUNKS_PER_THREAD chunks per thread and epoch keep the threads busy until
# about the end of each epoch on small corpora.
_CHUNK_WORK = 2_000_000
_EXAMPLE_OVERHEAD = 100
_MIN_CHUNKS_PER_THREAD = 4


def train_supervised(input=None, *, texts=None, labels=None, preset=None, verbose=1, valid=None,
                     callback=None, autotune_validation=None, autotune_duration=None,
                     autotune_metric=None, autotune_refit=None, cache_dir=None, **settings):
    """Train a text classifier on a corpus in fastText's supervised format, or on texts and labels.

    Every setting left out (or None) takes the value of ``preset``: "fastembed" (the default)
    or "fasttext", which trains exactly fastText's supervised model with its defaults. With
    ``autotune_validation``, the settings left out are searched instead
    (:func:`fastembed.autotune.autotune`).

    Parameters
    ----------
    input : str, path, bytes or list of str
        The training corpus: a file (plain or ``.gz``), its bytes, or its lines.
        Each line holds ``__label__``-prefixed labels and text.
    texts, labels : iterables, optional
        Instead of ``input``: the texts (str: a list, NumPy array, pandas Series...) and one
        label per text (with or without ``label_prefix``), or a list of labels per text
        (multi-label). Newlines in a text are read as spaces, label-like tokens in it dropped.
    preset : {"fastembed", "fasttext"}, optional
        Where unset settings come from.
    verbose : int
        0 silent; 1 progress and a summary on stderr.
    valid : str, path, bytes, list of lines or (texts, labels), optional
        A labelled corpus scored after every epoch (P@1, R@1, loss), in
        ``model.train_stats["history"]``; see ``patience``.
    callback : callable, optional
        ``callback(progress)`` gets a dict (epoch, epochs, progress, loss, lr, tokens_per_s,
        elapsed, tokens) at least once a second, and at each epoch's end with
        ``epoch_end=True``, ``train_loss`` and the validation metrics; returning ``False``
        stops training and returns the model so far.
    cache_dir : str or path, optional
        Encode the corpus file out of core into this directory and reuse the encoding on the
        next run with the same file and settings (:mod:`fastembed.text.corpus_cache`). Without
        it, files of 256 MiB and more are encoded out of core in a temporary directory.
    {autotune}
    {settings}

    Returns
    -------
    Model
    """
    run = {s.name: settings.pop(s.name, None) for s in RUN_SETTINGS}
    limit_heap_retention()  # trainings in turn keep the peak of the largest (fastembed.model.heap)
    release_free_memory()
    tune = (autotune_validation, autotune_duration, autotune_metric, autotune_refit)
    if any(value is not None for value in tune):
        from fastembed.autotune import autotune

        if callback is not None or any(v is not None for v in run.values()):
            raise ArgumentError("autotune takes no sample_weight, class_weight, callback or patience")
        if any(settings.get(name) is not None for name in ("init_model", "checkpoint", "resume")):
            raise ArgumentError("autotune takes no init_model, checkpoint or resume (it trains "
                                "fresh models)")
        if cache_dir is not None:
            raise ArgumentError("autotune takes no cache_dir (files of 256 MiB and more are encoded "
                                "out of core anyway)")
        source = training_source(input, texts, labels, settings.get("label_prefix") or "__label__")
        model = autotune(source, autotune_validation, duration=autotune_duration, metric=autotune_metric,
                         refit=autotune_refit, preset=preset, verbose=verbose, **settings)
        if valid is not None:
            n, p, r = model.test(valid_source(valid, model.args.label_prefix), k=1)
            model.train_stats.update(valid_examples=int(n), valid_precision_at_1=float(p),
                                     valid_recall_at_1=float(r))
    else:
        args, origin = continuation.settle(preset, settings)
        patience = _check_run_settings(run, valid, callback)
        t_start = time.perf_counter()
        source = training_source(input, texts, labels, args.label_prefix)
        start = None
        if origin is not None:  # an init model or a checkpoint: see fastembed.model.continuation
            dictionary, corpus, start = origin.prepare(source, args, cache_dir)
        else:
            dictionary, corpus = build_training_corpus(source, args, cache_dir=cache_dir)
        read_s = time.perf_counter() - t_start
        lr_weights = example_weights(corpus, dictionary.labels, args.label_prefix,
                                     run["sample_weight"], run["class_weight"])
        model = train_on_corpus(args, dictionary, corpus, verbose=verbose, example_weights=lr_weights,
                                callback=callback, valid=valid, patience=patience, start=start,
                                resume=origin.resume if origin is not None else None)
        model.train_stats.update(read_s=read_s, total_s=time.perf_counter() - t_start)
    release_free_memory()
    return model


def build_training_corpus(input, args, cache_dir=None, out_of_core=None):
    """The dictionary and the encoded bags of a training corpus under ``args``: in memory, or
    out of core (:mod:`fastembed.text.out_of_core`) for large files and with ``cache_dir``, or
    as ``out_of_core`` says when it is not None."""
    if out_of_core is None:
        out_of_core = use_out_of_core(input, cache_dir)
    load = partial(load_corpus, cache_dir=cache_dir) if out_of_core else build_corpus
    return load(
        input, label_prefix=args.label_prefix, min_count=args.min_count,
        min_count_label=args.min_count_label, word_ngrams=args.word_ngrams,
        bucket=args.effective_bucket, minn=args.minn, maxn=args.maxn, min_count_ngram=args.min_count_ngram,
        threads=args.n_threads)


def train_on_corpus(args, dictionary, corpus, *, verbose=1, check=None, example_weights=NO_WEIGHTS,
                    callback=None, valid=None, patience=0, start=None, resume=None):
    """Train a :class:`Model` on a corpus built by :func:`build_training_corpus`.

    ``args.loss`` "auto" is settled here. ``check()``, if given, runs once the tables are made
    and with every progress poll (ten times a second), and may raise to end the training
    (autotune's time limit does). ``example_weights`` (:mod:`fastembed.model.weights`),
    ``callback``, ``valid`` and ``patience`` as in :func:`train_supervised`. ``start``: the
    tables of continued training or of a checkpoint (:meth:`continuation.Origin.prepare`),
    ``resume`` a checkpoint's run state; ``args.checkpoint``: where to write checkpoints.
    """
    stats = {}
    args.resolve_loss(multi_label=corpus.has_multi_label_line())
    t0 = time.perf_counter()
    if start is None:
        inp, out = _init_tables(args, dictionary)
        idf, weights, doc_freq = corpus_weights(args, corpus, inp.shape[0], dictionary.nlabels)
        model = Model(args, dictionary, inp, out, idf=idf, doc_freq=doc_freq,
                      documents=corpus.n_lines)  # the tables train in place
        state = None
    else:
        inp, out, weights, state = start.inp, start.out, start.weights, start.state
        model = Model(args, dictionary, inp, out, idf=start.idf, doc_freq=start.doc_freq,
                      documents=start.documents)
    validation = None if valid is None else Validation(model, valid_source(valid, args.label_prefix))
    stats["init_s"] = time.perf_counter() - t0
    if check is not None:
        check()  # making the tables of a large model takes seconds: before the threads start

    t0 = time.perf_counter()
    trainer = _Trainer(args, dictionary, corpus, inp, out, weights, verbose=verbose, check=check,
                       example_weights=example_weights, callback=callback,
                       monitor=EpochMonitor(validation, patience), state=state)
    model.optimizer_state = (trainer.inp_state, trainer.out_state)
    checkpoint = args.checkpoint and continuation.Checkpointer(args.checkpoint, args, dictionary,
                                                                corpus, model)
    stats.update(trainer.run(resume, checkpoint or None))
    stats["train_s"] = time.perf_counter() - t0
    stats.update(examples=int(corpus.n_lines), skipped=int(corpus.n_skipped),
                 tokens=trainer.epoch_tokens, words=int(dictionary.nwords),
                 labels=int(dictionary.nlabels), buckets_used=int(dictionary.bucket_ids.size),
                 threads=int(args.n_threads), final_loss=float(trainer.last_loss))
    model.train_stats = stats
    return model


train_supervised.__doc__ = train_supervised.__doc__.replace(
    "    {settings}", "    " + docstring_table().replace("\n", "\n    ")).replace(
    "    {autotune}", "    " + autotune_docstring_table().replace("\n", "\n    "))
train_supervised.__signature__ = inspect.Signature(
    list(inspect.signature(train_supervised).parameters.values())[:-1]
    + [inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=None)
       for s in SETTINGS + RUN_SETTINGS])


def _check_run_settings(run, valid, callback):
    """Check the RUN_SETTINGS and the run's keywords; returns the patience (0: off)."""
    for setting in RUN_SETTINGS:
        value = run[setting.name]
        python_form = (setting.name == "class_weight" and isinstance(value, dict)
                       or setting.name == "sample_weight" and not isinstance(value, (str, os.PathLike)))
        if value is not None and not python_form:  # the Python forms: checked by weights.py
            setting.check(value)
    patience = run["patience"] or 0
    if patience and valid is None:
        raise ArgumentError(
            "patience needs a validation corpus (valid=, --valid): early stopping watches it")
    if callback is not None and not callable(callback):
        raise ArgumentError(f"callback must be callable, got {type(callback).__name__}")
    return patience


def _init_tables(args, dictionary):
    """Allocate and initialise both tables; the input table has the dictionary's rows."""
    inp = np.empty((dictionary.n_rows, args.dim), dtype=np.float32)
    init_uniform(inp, init_bound(args), args.seed, args.n_threads)
    inp[dictionary.unseen_row] = 0.0  # the last row stands for unseen and pruned buckets
    n_out = dictionary.nlabels - 1 if args.loss == "hs" else dictionary.nlabels
    out = np.zeros((n_out, args.dim), dtype=np.float32)
    return inp, out


def init_bound(args):
    """Input rows start U(-bound, bound).

    fastText's 1/dim under mean pooling. Under "sqrt" and "tfidf" pooling a bag's weights have
    unit norm, so the hidden vector starts as large as one row; 1/sqrt(dim) makes that about
    0.6 and gets the output layer learning from the first examples (with 1/dim it starts at
    0.06, near the saddle at zero, and short runs on small corpora lose 4 points of TREC-50).
    """
    return 1.0 / args.dim if args.pooling == "mean" else 1.0 / math.sqrt(args.dim)


def optimizer_state(optimizer, table):
    """Accumulators of ``table``'s optimizer: (element-wise (n, dim), row-wise (n,)), float32.

    Both always exist, so that the training kernel compiles once; the unused one is empty.
    """
    n, dim = table.shape
    element = np.zeros((n if optimizer == "adagrad" else 0, dim), dtype=np.float32)
    row = np.zeros(n if optimizer == "rowwise-adagrad" else 0, dtype=np.float32)
    return element, row


class _Trainer:
    """Runs the epochs of the classifier: shuffles, hands chunks to the workers, reports."""

    def __init__(self, args, dictionary, corpus, inp, out, weights, verbose, check=None,
                 example_weights=NO_WEIGHTS, callback=None, monitor=None, state=None):
        self.args = args
        self.check = check
        self.corpus = corpus
        self.inp = inp
        self.out = out
        self.weights = weights
        self.example_weights = example_weights
        self.monitor = monitor if monitor is not None else EpochMonitor(None, 0)
        n = self.n_threads = args.n_threads
        self.kernel = chunk_kernel(args.loss, args.optimizer)
        self.hs = tree_arrays(args.loss, dictionary.label_counts)
        self.inp_state, self.out_state = state or (optimizer_state(args.optimizer, inp),
                                                   optimizer_state(args.optimizer, out))
        # Each thread's copy of the output layer and its state, and the shared layer as of the
        # thread's last merge (see train_step.train_chunk); one thread updates the shared one.
        self.private = n > 1
        if self.private:
            self.out_local = thread_local_arrays(n, out.shape, np.float32, like=out)
            self.out_snapshot = thread_local_arrays(n, out.shape, np.float32, like=out)
            self.out_state_local = list(zip(*(thread_local_arrays(n, a.shape, np.float32, like=a)
                                              for a in self.out_state)))
            self.out_state_snapshot = list(zip(*(thread_local_arrays(n, a.shape, np.float32, like=a)
                                                 for a in self.out_state)))
        else:
            self.out_local = self.out_snapshot = [out]
            self.out_state_local = self.out_state_snapshot = [self.out_state]
        dim = args.dim
        self.hidden = thread_local_arrays(n, (dim,), np.float32)
        self.grad = thread_local_arrays(n, (dim,), np.float32)
        n_probs = 0 if args.loss == "hs" else out.shape[0]  # hs scores only the target's path
        self.probs = thread_local_arrays(n, (n_probs,), np.float32)
        self.node_probs = np.zeros(0, dtype=np.float32)
        self.workers = Workers(n)
        self.epoch_tokens = corpus.total_tokens()
        self.tokens_total = float(max(self.epoch_tokens * args.epoch, 1))
        self.progress = Progress(self.tokens_total, n, enabled=verbose >= 1, callback=callback,
                                 epochs=args.epoch)
        self.last_loss = float("nan")
        self.release_pages = getattr(corpus, "release_pages", lambda: None)  # out-of-core corpora
        self.lines_read = getattr(corpus, "lines_read", lambda n: None)  # released by volume too

    def chunk_examples(self):
        """Examples per chunk (see _CHUNK_WORK)."""
        c = self.corpus
        n = max(int(c.n_lines), 1)
        out_rows = math.log2(max(self.out.shape[0], 2)) if self.args.loss == "hs" else self.out.shape[0]
        work = self.args.dim * (c.indices.size / n + out_rows) + _EXAMPLE_OVERHEAD
        by_work = int(_CHUNK_WORK / work)
        by_balance = -(-n // (self.n_threads * _MIN_CHUNKS_PER_THREAD))
        return max(1, min(by_work, by_balance))

    def _step(self, order):
        """The workers' step for one epoch's ``order``."""
        c, a, t = self.corpus, self.args, self
        paths, codes, offsets = self.hs
        lr, total, counters, losses = float(a.lr), self.tokens_total, t.workers.counters, t.workers.losses

        def step(thread, start, stop):
            if t.progress.stopped:  # the callback asked to stop: no chunk after the current ones
                return False
            going = t.kernel(
                t.inp, t.inp_state, t.out, t.out_state, t.out_local[thread], t.out_state_local[thread],
                t.out_snapshot[thread], t.out_state_snapshot[thread], t.private, c.indices, c.offsets,
                t.weights, c.label_indices, c.label_offsets, c.ntokens, t.example_weights, order,
                start, stop, lr, total, paths, codes, offsets, thread, counters, losses, t.rng_states,
                t.hidden[thread], t.grad[thread], t.probs[thread], t.node_probs)
            t.lines_read(stop - start)
            return going
        return step

    def _hogwild_epoch(self, pieces, chunk):
        """One epoch on the workers, a ``run_epoch`` per piece of its order; False when the
        callback stopped it."""
        for order in pieces:
            complete = self.workers.run_epoch(order.size, chunk, self._step(order), self._poll)
            del order  # not held while the next piece is made (16 MB at SEGMENT_LINES)
            if not complete:
                return False
        return True

    def _poll(self):
        """The workers' poll: progress, then autotune's deadline check and (out of core) page release."""
        self._report_progress()
        if self.check is not None:
            self.check()
        self.release_pages()

    def _report_progress(self):
        """Progress line; TrainingDiverged as soon as the average loss is not finite (shared with
        the word-vector trainer)."""
        tokens = self.workers.tokens()
        avg = self.workers.mean_loss()
        if not math.isfinite(avg):
            raise TrainingDiverged(
                f"training diverged (loss is {avg}) at {100 * tokens / self.tokens_total:.0f}% "
                f"with lr={self.args.lr}: try a smaller learning rate")
        lr_now = self.args.lr * max(0.0, 1.0 - tokens / self.tokens_total)
        self.progress.update(tokens, lr_now, avg)
        self.last_loss = avg

    def run(self, resume=None, on_epoch_end=None):
        """Train every epoch after a checkpoint's ``resume`` state, if any (or until early
        stopping or the callback stop it); ``on_epoch_end(trainer, epochs_done, shuffle_rng)``
        after each complete epoch (checkpoints). Returns the run's train_stats entries
        (:meth:`fastembed.model.validation.EpochMonitor.finish`)."""
        args = self.args
        n = self.corpus.n_lines
        rng = np.random.default_rng(args.seed)
        # deterministic mode draws its own streams (see deterministic.py): the shuffles must
        # not depend on the thread count
        streams = 1 if args.deterministic else self.n_threads
        self.rng_states = rng.integers(0, 2**63, size=streams, dtype=np.uint64)
        first = 0
        if resume is not None:
            first = continuation.restore(self, resume, rng)
            self.last_loss = self.workers.mean_loss()  # the checkpoint's run so far
        chunk = self.chunk_examples()
        segments = getattr(self.corpus, "shuffled_segments", None)  # out-of-core corpora: by blocks
        complete = True
        early_stop = self.monitor.exhausted  # a checkpoint of a run that early stopping ended
        with self.workers:
            for epoch in range(first + 1, args.epoch + 1 if not early_stop else first + 1):
                self.progress.epoch = epoch
                # the epoch's order in pieces (one, in memory), each made when the last is done
                pieces = segments(rng) if segments else [rng.permutation(n).astype(np.int64)]
                seen, loss_sum = self._loss_counters()
                if args.deterministic:  # its streams are seeded by the 0-based epoch
                    complete = deterministic.run_epoch(self, pieces, epoch - 1)
                else:
                    complete = self._hogwild_epoch(pieces, chunk)
                del pieces
                if not complete:  # stopped by the callback
                    break
                early_stop = self._end_epoch(epoch, seen, loss_sum)
                if on_epoch_end is not None:
                    on_epoch_end(self, epoch, rng)
                if early_stop or self.progress.stopped:
                    break
        self.progress.update(self.workers.tokens(), 0.0, self.last_loss, final=True)
        stats = self.monitor.finish((self.inp, self.out), complete)
        if self.progress.stopped:
            stats["stopped_by"] = "callback"
        elif complete and early_stop:
            stats["stopped_by"] = "patience"
        return stats

    def _loss_counters(self):
        """(examples trained on, their summed loss) so far, all threads."""
        return int(self.workers.counters[:, SEEN].sum()), float(self.workers.losses[:, LOSS_SUM].sum())

    def _end_epoch(self, epoch, seen0, loss_sum0):
        """History, validation and early stopping after ``epoch``; True to stop training."""
        seen, loss_sum = self._loss_counters()
        tokens = self.workers.tokens()
        lr_now = self.args.lr * max(0.0, 1.0 - tokens / self.tokens_total)
        entry, stop = self.monitor.end_epoch(epoch, (loss_sum - loss_sum0) / max(seen - seen0, 1),
                                             lr_now, time.perf_counter() - self.progress.start,
                                             (self.inp, self.out))
        self.progress.epoch_end(tokens, lr_now, self.last_loss, entry)
        return stop
