"""train_unsupervised: skipgram and cbow word vectors on the shared hogwild worker loop.

The corpus becomes a token stream and the subword rows of the vocabulary
(:mod:`fastembed.wordvec.corpus`); each pass, :class:`fastembed.model.workers.Workers` hands
chunks of lines, in a new random order, to the worker threads, which run
:func:`fastembed.wordvec.kernels.train_lines` without ever waiting for each other, while the
calling thread reports progress and watches for Ctrl-C and divergence.
"""

import inspect
import time

import numpy as np

from fastembed.model.progress import Progress
from fastembed.model.training import _Trainer as _ClassifierTrainer
from fastembed.model.rng import init_uniform
from fastembed.model.workers import Workers, thread_local_arrays
from fastembed.settings import UNSUPERVISED_SETTINGS, UnsupervisedArgs, unsupervised_docstring_table
from fastembed.wordvec.corpus import build_vocabulary, keep_probabilities, subword_rows
from fastembed.wordvec.kernels import MAX_PIECE, MODEL_CODES, alias_table, train_lines
from fastembed.wordvec.vectors import WordVectors

__all__ = ["NEGATIVE_POWER", "RANDOM_SHARE_TENTHS", "init_input", "train_unsupervised"]

# Negatives ~ count ** power. skipgram: fastText's 0.5. cbow: word2vec's and gensim's 0.75, which
# measured better than 0.5 on the first 3M words of the benchmark corpus (scripts/results/
# wordvec.md; analogies .404 against .350, WordSim353 .179 against .129; fastText's cbow .324
# and .159). skipgram keeps 0.5: 0.75 (gensim's) measured lower analogies on the 3M prefix
# (.420, .425 against .440, .433 for seeds 0, 1; WordSim353 .362, .379 against .355, .363), and
# with t=1e-3 too (.437 against .449, .465): gensim's analogy lead comes from its t and lr.
NEGATIVE_POWER = {"skipgram": 0.5, "cbow": 0.75}
# A chunk (one claim of a worker) is about this many tokens: ~10-30 ms of training, so the ~50 us
# of calling the kernel from Python is lost in it, and there are still >= _MIN_CHUNKS_PER_THREAD
# chunks per thread and epoch for the threads to even out.
_CHUNK_TOKENS = 20_000
_MIN_CHUNKS_PER_THREAD = 4
# Each pass visits the chunks in a new random order (seeded), not in corpus order. In corpus
# order the threads moved through the benchmark corpus together, so every pass trained its
# parts as long blocks, 11.5M words of IMDB and then 3.25M of 20 Newsgroups, and the parts did
# not add up: skipgram's WordSim353 on the whole corpus was .413-.419, no better than on the
# 20 Newsgroups part alone (.39-.42), where fastText reaches .536 (.424 on the part). The same
# code on the same corpus with its lines shuffled beforehand: .542 (seed 0). fastText mixes the
# parts in its own way: thread k starts reading at byte k/threads of the file (so with 2
# threads one reads IMDB while the other reads 20 Newsgroups) and wraps around at its end;
# a random order of chunks mixes them whatever the thread count, and a chunk (~20k tokens)
# keeps the reads sequential within it.


def train_unsupervised(input, model=None, *, verbose=1, **settings):
    """Train word vectors (fastText's skipgram or cbow, with character n-grams).

    Parameters
    ----------
    input : str, path, bytes or iterable of str
        The corpus: a file (plain or ``.gz``), its bytes, or its lines (texts). Tokens are
        split on whitespace; tokens starting with ``label_prefix`` are ignored.
    model : {"skipgram", "cbow"}, optional
    verbose : int
        0 silent; 1 progress on stderr.
    {settings}

    Returns
    -------
    WordVectors
    """
    args = UnsupervisedArgs.from_given(model=model, **settings)
    stats = {}
    t_start = time.perf_counter()
    dictionary, stream = build_vocabulary(
        input, min_count=args.min_count, label_prefix=args.label_prefix,
        bucket=args.effective_bucket, minn=args.minn, maxn=args.maxn, threads=args.n_threads)
    subwords, dictionary = subword_rows(dictionary)
    stats["read_s"] = time.perf_counter() - t_start

    t0 = time.perf_counter()
    nwords = dictionary.nwords
    inp = np.empty((nwords + subwords.bucket_ids.size + 1, args.dim), dtype=np.float32)
    init_input(inp, nwords, subwords.bucket_ids, args.effective_bucket, args.seed)
    out = np.zeros((nwords, args.dim), dtype=np.float32)
    stats["init_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    trainer = _Trainer(args, dictionary, stream, subwords, inp, out, verbose)
    trainer.run()
    stats["train_s"] = time.perf_counter() - t0
    stats["total_s"] = time.perf_counter() - t_start
    stats.update(lines=int(stream.n_lines), tokens=int(stream.tokens.size),
                 corpus_tokens=int(dictionary.ntokens), words=int(nwords),
                 tokens_trained=int(trainer.workers.tokens()),
                 buckets_used=int(subwords.bucket_ids.size), threads=int(args.n_threads),
                 final_loss=float(trainer.last_loss))
    return WordVectors(args, dictionary, inp, out, train_stats=stats)


train_unsupervised.__doc__ = train_unsupervised.__doc__.replace(
    "    {settings}", "    " + "\n    ".join(
        line for line in unsupervised_docstring_table().split("\n")
        if not line.startswith(("model ", "    skipgram:"))).replace("\n", "\n    "))
train_unsupervised.__signature__ = inspect.Signature(
    [inspect.Parameter("input", inspect.Parameter.POSITIONAL_OR_KEYWORD),
     inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
     inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=1)]
    + [inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=None)
       for s in UNSUPERVISED_SETTINGS if s.name != "model"])


# The share of fastText's input table (words first, then the hash buckets) that starts random:
# fastText's own start with thread=2 (init_input). Measured on the 20 Newsgroups part (3.25M
# words, skipgram, 5 epochs; scripts/results/wordvec.md): WordSim353 .423, .392, .408, .406
# (seeds 0-3, mean .407) against .381, .388, .385, .409 with every row random (mean .391) and
# .405 with every n-gram row zero (seed 0); fastText .424, .429. A small gain, within 2 standard
# errors of none; kept because it is what fastText does.
RANDOM_SHARE_TENTHS = 2


def init_input(inp, nwords, bucket_ids, bucket, seed):
    """The input table before training: fastText's start with 2 threads.

    fastText means every row to start at ``U(-1/dim, 1/dim)``, but ``DenseMatrix::uniform``
    fills one tenth of its table (``nwords + bucket`` rows) per training thread
    (``uniformThread``'s block is a tenth whatever the thread count; fastText issues #935,
    #1061) and leaves the rest at zero: with ``thread=2`` the word rows and the buckets of
    fastText row below 2/10 of the table (about 18% of them at bucket 2M) start random, the
    other n-gram rows at zero (``tests/test_wordvec.py`` checks this on a trained fastText
    model). The update is fastText's; this start is the one difference found in the subword
    path (its effect measured at :data:`RANDOM_SHARE_TENTHS`, fixed rather than the thread
    count so that the model does not depend on it). ``bucket_ids[j]`` is the bucket of
    row ``nwords + j``; the last row, that of every bucket no vocabulary word uses, is zero.
    """
    dim = inp.shape[1]
    init_uniform(inp, 1.0 / dim, seed)
    cut = RANDOM_SHARE_TENTHS * ((nwords + bucket) * dim // 10) // dim  # fastText's first zero row
    n_used = bucket_ids.size
    inp[nwords:nwords + n_used][np.asarray(bucket_ids, dtype=np.int64) + nwords >= cut] = 0.0
    inp[nwords + n_used:] = 0.0


class _Trainer:
    """The epochs of one run: chunks of lines to the workers, progress and divergence."""

    def __init__(self, args, dictionary, stream, subwords, inp, out, verbose):
        self.args = args
        self.stream = stream
        self.subwords = subwords
        self.inp = inp
        self.out = out
        n = self.n_threads = args.n_threads
        self.keep_prob = keep_probabilities(dictionary.word_counts, dictionary.ntokens, args.t)
        weights = dictionary.word_counts.astype(np.float64) ** NEGATIVE_POWER[args.model]
        self.alias_prob, self.alias_index = alias_table(weights)
        self.piece = thread_local_arrays(n, (MAX_PIECE,), np.int32)
        self.negs = thread_local_arrays(n, (2, 2 * args.ws * args.neg), np.int32)
        self.hidden = thread_local_arrays(n, (args.dim,), np.float32)
        self.grad = thread_local_arrays(n, (args.dim,), np.float32)
        self.window_grad = thread_local_arrays(n, (args.dim,), np.float32)
        self.workers = Workers(n)
        # fastText's budget (kernels.py's docstring): epoch x all tokens, unknown words included,
        # counted in known tokens; so the passes are more than epoch, the last one partial
        self.tokens_total = float(args.epoch * dictionary.ntokens)
        self.passes = -(-args.epoch * dictionary.ntokens // max(stream.tokens.size, 1))
        self.progress = Progress(self.tokens_total, n, enabled=verbose >= 1)
        self.last_loss = float("nan")

    def chunk_lines(self):
        s = self.stream
        n = max(s.n_lines, 1)
        per_line = max(s.tokens.size / n, 1.0)
        by_work = int(_CHUNK_TOKENS / per_line)
        by_balance = -(-n // (self.n_threads * _MIN_CHUNKS_PER_THREAD))
        return max(1, min(by_work, by_balance))

    def _step(self, order, chunk):
        """``step(thread, a, b)``: the chunks ``order[a:b]`` of ``chunk`` lines each."""
        a, s, sw, t = self.args, self.stream, self.subwords, self
        kind = MODEL_CODES[a.model]
        lr, total = float(a.lr), self.tokens_total
        counters, losses = t.workers.counters, t.workers.losses
        n_lines = s.n_lines

        def step(thread, first, last):
            for k in order[first:last]:
                start = int(k) * chunk
                if not train_lines(kind, t.inp, t.out, sw.offsets, sw.rows, s.tokens, s.offsets,
                                   start, min(start + chunk, n_lines), t.keep_prob, t.alias_prob,
                                   t.alias_index, a.ws, a.neg, lr, total, thread, counters,
                                   losses, t.rng_states, t.piece[thread], t.negs[thread],
                                   t.hidden[thread], t.grad[thread], t.window_grad[thread]):
                    return False
            return True
        return step

    # progress line, and TrainingDiverged as soon as the average loss is not finite: the
    # classifier's (it reads only workers, tokens_total, args.lr, progress and last_loss)
    _poll = _ClassifierTrainer._report_progress

    def run(self):
        rng = np.random.default_rng(self.args.seed)
        self.rng_states = rng.integers(0, 2**63, size=self.n_threads, dtype=np.uint64)
        chunk = self.chunk_lines()
        n_chunks = -(-self.stream.n_lines // chunk)
        with self.workers:  # the threads end with the last epoch (or an error)
            for _ in range(self.passes):  # the last one ends where the budget is spent
                order = rng.permutation(n_chunks)  # a new order each pass (see above)
                if not self.workers.run_epoch(n_chunks, 1, self._step(order, chunk), self._poll):
                    break
        self.progress.update(self.workers.tokens(), 0.0, self.last_loss, final=True)
