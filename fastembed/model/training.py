"""Training: corpus to dictionary and bags, then hogwild SGD in Numba, one pass at a time.

Numba runs the passes; Python runs between them, so that progress, Ctrl-C, divergence checks
and (later) validation, callbacks and checkpoints all have one place to live.
"""

import math
import time

import inspect

import numba
import numpy as np

from fastembed.errors import TrainingDiverged
from fastembed.model import train_step
from fastembed.model.classifier import Model
from fastembed.model.forward import LOSS_CODES
from fastembed.model.huffman import tree_arrays
from fastembed.model.pooling import bag_weights, document_frequency, smooth_idf
from fastembed.model.progress import Progress
from fastembed.model.rng import init_uniform
from fastembed.settings import SETTINGS, TrainArgs, docstring_table
from fastembed.text import build_corpus

# Python regains control after every pass: progress, Ctrl-C, divergence checks, and the merge of
# the threads' copies of the output layer. Between merges a thread sees only its own output
# updates, so a pass gives each thread at most _PASS_EXAMPLES_PER_THREAD examples: with one
# merge per epoch, 2 threads lost 7 points of P@1 on an AG News slice (0.57 against 0.64 for
# both 1 thread and fastText); 512 lost 1.7 points, 128 loses 0.5, 32 none. Each pass costs a
# thread start and join: tens of microseconds on an idle machine, milliseconds when another
# process holds a core, hence not fewer.
_PASS_EXAMPLES_PER_THREAD = 128


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
    args = TrainArgs.from_preset(preset, **settings)
    stats = {}
    t_start = time.perf_counter()
    dictionary, corpus = build_corpus(
        input, label_prefix=args.label_prefix, min_count=args.min_count,
        min_count_label=args.min_count_label, word_ngrams=args.word_ngrams,
        bucket=args.effective_bucket, minn=args.minn, maxn=args.maxn, min_count_ngram=args.min_count_ngram)
    stats["read_s"] = time.perf_counter() - t_start
    args.resolve_loss(multi_label=bool((np.diff(corpus.label_offsets) > 1).any()))

    t0 = time.perf_counter()
    inp, out = _init_tables(args, dictionary)
    idf = None
    if args.pooling == "tfidf":
        df = document_frequency(corpus.indices, corpus.offsets, inp.shape[0])
        idf = smooth_idf(df, corpus.n_lines)
        idf[-1] = 0.0  # the unseen-bucket row: dropped from the norm, as scikit-learn drops unknown terms
    weights = bag_weights(args.pooling, corpus.indices, corpus.offsets, idf)
    stats["init_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    trainer = _Trainer(args, dictionary, corpus, inp, out, weights, verbose=verbose)
    trainer.run()
    stats["train_s"] = time.perf_counter() - t0
    stats["total_s"] = time.perf_counter() - t_start
    stats.update(examples=int(corpus.n_lines), skipped=int(corpus.n_skipped),
                 tokens=int(corpus.ntokens.sum()), words=int(dictionary.nwords),
                 labels=int(dictionary.nlabels), buckets_used=int(dictionary.bucket_ids.size),
                 threads=int(args.n_threads), final_loss=float(trainer.last_loss))
    model = Model(args, dictionary, inp, out, idf=idf, train_stats=stats)
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
    """Runs the epochs: shuffles, splits each epoch into passes, reports, checks divergence."""

    def __init__(self, args, dictionary, corpus, inp, out, weights, verbose):
        self.args = args
        self.corpus = corpus
        self.inp = inp
        self.out = out
        self.n_threads = args.n_threads
        self.loss_kind = LOSS_CODES[args.loss]
        self.opt_kind = train_step.OPTIMIZER_CODES[args.optimizer]
        self.hs = tree_arrays(args.loss, dictionary.label_counts)
        self.inp_state = optimizer_state(args.optimizer, inp)
        self.out_state = optimizer_state(args.optimizer, out)
        # per-thread copies of the output layer and its state (see train_step.train_pass)
        self.out_local = np.empty((self.n_threads,) + out.shape, dtype=np.float32)
        self.out_state_local = tuple(np.empty((self.n_threads,) + a.shape, dtype=np.float32)
                                     for a in self.out_state)
        self.weights = weights
        self.epoch_tokens = int(corpus.ntokens.sum())
        self.tokens_total = float(max(self.epoch_tokens * args.epoch, 1))
        self.progress = Progress(self.tokens_total, self.n_threads, enabled=verbose >= 1)
        self.last_loss = float("nan")

    def _scatter_output(self):
        for local, shared in zip((self.out_local, *self.out_state_local), (self.out, *self.out_state)):
            local[:] = shared

    def _merge_output(self):
        """Every thread's change to the output layer, added up (one thread: its copy as is)."""
        for local, shared in zip((self.out_local, *self.out_state_local), (self.out, *self.out_state)):
            if self.n_threads == 1:
                shared[:] = local[0]
            else:
                local -= shared
                shared += local.sum(axis=0)

    def run(self):
        args = self.args
        n = self.corpus.n_lines
        rng = np.random.default_rng(args.seed)
        pass_size = _PASS_EXAMPLES_PER_THREAD * self.n_threads
        rng_states = rng.integers(0, 2**63, size=self.n_threads, dtype=np.uint64)
        losses = np.zeros(self.n_threads, dtype=np.float64)
        seen = np.zeros(self.n_threads, dtype=np.int64)
        tokens = np.zeros(self.n_threads, dtype=np.int64)
        _set_threads(self.n_threads)
        tokens_before = 0
        loss_sum, loss_n = 0.0, 0
        c = self.corpus
        paths, codes, offsets = self.hs
        for _ in range(args.epoch):
            order = rng.permutation(n).astype(np.int64)
            for start in range(0, n, pass_size):
                stop = min(start + pass_size, n)
                self._scatter_output()
                train_step.train_pass(self.inp, self.out_local, self.inp_state, self.out_state_local,
                             c.indices, c.offsets, self.weights, c.label_indices, c.label_offsets,
                             c.ntokens, order, start, stop, self.n_threads, float(args.lr),
                             float(tokens_before), self.tokens_total, self.loss_kind,
                             self.opt_kind, paths, codes, offsets, rng_states,
                             losses, seen, tokens)
                self._merge_output()
                tokens_before += int(tokens.sum())
                loss_sum += float(losses.sum())
                loss_n += int(seen.sum())
                avg = loss_sum / max(loss_n, 1)
                if not math.isfinite(avg):
                    raise TrainingDiverged(
                        f"training diverged (loss is {avg}) at {100 * tokens_before / self.tokens_total:.0f}% "
                        f"with lr={args.lr}: try a smaller learning rate")
                lr_now = args.lr * max(0.0, 1.0 - tokens_before / self.tokens_total)
                self.progress.update(tokens_before, lr_now, avg)
            self.last_loss = loss_sum / max(loss_n, 1)
        self.progress.update(tokens_before, 0.0, self.last_loss, final=True)
