"""Training: corpus to dictionary and bags, then hogwild SGD in Numba on worker threads.

Worker threads (:mod:`fastembed.model.workers`) run the Numba kernel
(:func:`fastembed.model.train_step.chunk_kernel`) on chunks of each epoch, never waiting for
each other; the main thread polls them for progress, Ctrl-C and divergence, and the end of an
epoch is where (later) validation, callbacks and checkpoints live.
"""

import inspect
import math
import time
from types import SimpleNamespace

import numba
import numpy as np

from fastembed.errors import TrainingDiverged
from fastembed.model import continuation, deterministic
from fastembed.model.classifier import Model
from fastembed.model.huffman import tree_arrays
from fastembed.model.pooling import bag_weights, document_frequency, smooth_idf
from fastembed.model.progress import Progress
from fastembed.model.rng import init_uniform
from fastembed.model.train_step import chunk_kernel
from fastembed.model.workers import Workers, thread_local_arrays
from fastembed.settings import SETTINGS, TrainArgs, docstring_table
from fastembed.text import build_corpus

# A worker's chunk: about _CHUNK_WORK multiply-adds of pooling and output layer (a few ms at
# the ~100 ns per bag row of dim 100 measured on SST-2), so that the Python call per chunk
# (10-20 us measured) is lost in it, and that after Ctrl-C the workers stop within
# milliseconds; _EXAMPLE_OVERHEAD stands for the fixed cost of an example in the same units.
# At least _MIN_CHUNKS_PER_THREAD chunks per thread and epoch keep the threads busy until
# about the end of each epoch on small corpora.
_CHUNK_WORK = 2_000_000
_EXAMPLE_OVERHEAD = 100
_MIN_CHUNKS_PER_THREAD = 4


def train_supervised(input, *, preset=None, verbose=1, valid=None, **settings):
    """Train a text classifier on a corpus in fastText's supervised format.

    Every setting left out (or None) takes the value of ``preset``: "fastembed" (the default)
    or "fasttext", which trains exactly fastText's supervised model with its defaults.

    Parameters
    ----------
    input : str, path, bytes or list of str
        The training corpus: a file (plain or ``.gz``), its bytes, or its lines.
        Each line holds ``__label__``-prefixed labels and text.
    preset : {"fastembed", "fasttext"}, optional
        Where unset settings come from.
    verbose : int
        0 silent; 1 progress and a summary on stderr.
    valid : str or path, optional
        A labelled corpus to report precision at 1 on after training.
    {settings}

    Returns
    -------
    Model
    """
    args, origin = continuation.settle(preset, settings)
    stats = {}
    t_start = time.perf_counter()
    if origin is not None:  # an init model or a checkpoint: see fastembed.model.continuation
        dictionary, corpus, start = origin.prepare(input, args)
        stats["read_s"] = stats["init_s"] = 0.0
        inp, out, idf, weights = start.inp, start.out, start.idf, start.weights
    else:
        dictionary, corpus = build_corpus(
            input, label_prefix=args.label_prefix, min_count=args.min_count,
            min_count_label=args.min_count_label, word_ngrams=args.word_ngrams,
            bucket=args.effective_bucket, minn=args.minn, maxn=args.maxn, min_count_ngram=args.min_count_ngram)
        stats["read_s"] = time.perf_counter() - t_start
        args.resolve_loss(multi_label=bool((np.diff(corpus.label_offsets) > 1).any()))

        t0 = time.perf_counter()
        inp, out = _init_tables(args, dictionary)
        idf = df = None
        if args.pooling == "tfidf":
            df = document_frequency(corpus.indices, corpus.offsets, inp.shape[0]).astype(np.int64)
            idf = smooth_idf(df, corpus.n_lines)
            idf[-1] = 0.0  # the unseen-bucket row: dropped from the norm, as scikit-learn drops unknown terms
        weights = bag_weights(args.pooling, corpus.indices, corpus.offsets, idf)
        start = SimpleNamespace(state=None, idf=idf, doc_freq=df, documents=corpus.n_lines)
        stats["init_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    trainer = _Trainer(args, dictionary, corpus, inp, out, weights, verbose=verbose, state=start.state)
    checkpoint = args.checkpoint and continuation.Checkpointer(args.checkpoint, args, dictionary,
                                                                corpus, start)
    trainer.run(origin and origin.resume, checkpoint)
    stats["train_s"] = time.perf_counter() - t0
    stats["total_s"] = time.perf_counter() - t_start
    stats.update(examples=int(corpus.n_lines), skipped=int(corpus.n_skipped),
                 tokens=int(corpus.ntokens.sum()), words=int(dictionary.nwords),
                 labels=int(dictionary.nlabels), buckets_used=int(dictionary.bucket_ids.size),
                 threads=int(args.n_threads), final_loss=float(trainer.last_loss))
    model = Model(args, dictionary, inp, out, idf=idf, train_stats=stats,
                  optimizer_state=(trainer.inp_state, trainer.out_state), doc_freq=start.doc_freq,
                  documents=start.documents)
    if valid is not None:
        n, p, r = model.test(valid, k=1)
        stats.update(valid_examples=int(n), valid_precision_at_1=float(p), valid_recall_at_1=float(r))
        model.train_stats = stats
    return model


train_supervised.__doc__ = train_supervised.__doc__.replace(
    "    {settings}", "    " + docstring_table().replace("\n", "\n    "))
train_supervised.__signature__ = inspect.Signature(
    list(inspect.signature(train_supervised).parameters.values())[:-1]
    + [inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=None) for s in SETTINGS])


def _init_tables(args, dictionary):
    """Allocate and initialise both tables; the input table has the dictionary's rows."""
    inp = np.empty((dictionary.n_rows, args.dim), dtype=np.float32)
    _set_threads(args.n_threads)
    init_uniform(inp, init_bound(args), args.seed)
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


def _set_threads(n):
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


class _Trainer:
    """Runs the epochs of the classifier: shuffles, hands chunks to the workers, reports."""

    def __init__(self, args, dictionary, corpus, inp, out, weights, verbose, state=None):
        self.args = args
        self.corpus = corpus
        self.inp = inp
        self.out = out
        self.weights = weights
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
        self.epoch_tokens = int(corpus.ntokens.sum())
        self.tokens_total = float(max(self.epoch_tokens * args.epoch, 1))
        self.progress = Progress(self.tokens_total, n, enabled=verbose >= 1)
        self.last_loss = float("nan")

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
            return t.kernel(
                t.inp, t.inp_state, t.out, t.out_state, t.out_local[thread], t.out_state_local[thread],
                t.out_snapshot[thread], t.out_state_snapshot[thread], t.private, c.indices, c.offsets,
                t.weights, c.label_indices, c.label_offsets, c.ntokens, order, start, stop, lr, total,
                paths, codes, offsets, thread, counters, losses, t.rng_states, t.hidden[thread],
                t.grad[thread], t.probs[thread], t.node_probs)
        return step

    def _poll(self):
        """Progress line; TrainingDiverged as soon as the average loss is not finite."""
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
        """The epochs (those after a checkpoint's ``resume`` state); ``on_epoch_end(trainer,
        epochs_done, shuffle_rng)`` after each (checkpoints)."""
        args = self.args
        n = self.corpus.n_lines
        rng = np.random.default_rng(args.seed)
        # deterministic mode draws its own streams (see deterministic.py): the shuffles must
        # not depend on the thread count
        streams = 1 if args.deterministic else self.n_threads
        self.rng_states = rng.integers(0, 2**63, size=streams, dtype=np.uint64)
        first = 0 if resume is None else continuation.restore(self, resume, rng)
        chunk = self.chunk_examples()
        with self.workers:
            for epoch in range(first, args.epoch):
                order = rng.permutation(n).astype(np.int64)
                if args.deterministic:
                    deterministic.run_epoch(self, order, epoch)
                else:
                    self.workers.run_epoch(n, chunk, self._step(order), self._poll)
                if on_epoch_end:
                    on_epoch_end(self, epoch + 1, rng)
        self.progress.update(self.workers.tokens(), 0.0, self.last_loss, final=True)
