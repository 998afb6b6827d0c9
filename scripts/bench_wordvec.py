#!/usr/bin/env python
"""Word vectors: fastembed vs fastText vs gensim, skipgram and cbow, same corpus, same settings.

The word-vector section of the benchmarks (``scripts/benchmark.py --configs wordvec`` runs it
too, beside the classifiers' configurations).
The corpus is the text of IMDB train + test and 20 Newsgroups train, labels stripped,
lowercased (14.8M words; ``scripts/make_wordvec_corpus.py`` builds it, and this script does
when ``--corpus`` does not exist; ``--words N`` takes a prefix). Settings: dim 100, 5 epochs,
min_count 5, 2 threads, each system's defaults otherwise (fastembed and fastText: lr 0.05, ws
5, neg 5, t 1e-4, minn 3, maxn 6, bucket 2M; gensim 4: alpha 0.025, window 5, negative 5,
sample 1e-3, min_n 3, max_n 6, bucket 2M).

Every training is a fresh subprocess (``--worker``), so its import cost, peak RSS and failures
are its own; the systems alternate (A rep 1, B rep 1, ..., A rep 2, ...) so that the drift of a
shared machine spreads over all of them. ``train s`` is the training call (reading the corpus
included, the .vec export not); ``tok/s/thread`` is corpus tokens x epochs / train s / threads.
Each run's vocabulary vectors go to a ``.vec`` file, evaluated with gensim 4 (the same code for
every system): WordSim353 Spearman (``evaluate_word_pairs``) and analogy accuracy
(``evaluate_word_analogies``, 3CosAdd, ``restrict_vocab=100000``), on the evaluation sets
that ship with gensim.

    python scripts/bench_wordvec.py --out wordvec.md --json wordvec.json
    python scripts/bench_wordvec.py --words 3000000 --models skipgram --systems fastembed,fasttext
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import REPO_ROOT, machine_info, run_child, summarize  # noqa: E402

SYSTEMS = ("fastembed", "fasttext", "gensim")
MODELS = ("skipgram", "cbow")
DIM, EPOCH, MIN_COUNT = 100, 5, 5
DEFAULT_CORPUS = "/tmp/wordvec_corpus.txt"


# -- workers (one training per process) --------------------------------------------------------

def _rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(system, model, corpus, vec, threads):
    """Train one system and write its vectors to ``vec``; prints a JSON record."""
    t0 = time.perf_counter()
    if system == "fastembed":
        import fastembed

        m = fastembed.train_unsupervised(corpus, model=model, dim=DIM, epoch=EPOCH,
                                         min_count=MIN_COUNT, threads=threads, verbose=0)
        train_s = time.perf_counter() - t0
        rss = _rss_mb()
        m.save_vec(vec)
    elif system == "fasttext":
        import fasttext

        m = fasttext.train_unsupervised(corpus, model=model, dim=DIM, epoch=EPOCH,
                                        minCount=MIN_COUNT, thread=threads, verbose=0)
        train_s = time.perf_counter() - t0
        rss = _rss_mb()
        with open(vec, "w", encoding="utf-8", errors="backslashreplace") as f:
            words = m.get_words(on_unicode_error="replace")
            f.write(f"{len(words)} {DIM}\n")
            for w in words:
                f.write(w + " " + " ".join(f"{v:.5g}" for v in m.get_word_vector(w).tolist()) + "\n")
    else:
        from gensim.models import FastText

        m = FastText(corpus_file=corpus, vector_size=DIM, epochs=EPOCH, min_count=MIN_COUNT,
                     sg=int(model == "skipgram"), workers=threads)
        train_s = time.perf_counter() - t0
        rss = _rss_mb()
        m.wv.save_word2vec_format(vec)
    print(json.dumps({"train_s": train_s, "rss_at_end_mb": rss}))


def evaluate(vec):
    """WordSim353 Spearman and analogy accuracy of a .vec file (gensim's evaluation)."""
    from gensim.models import KeyedVectors
    from gensim.test.utils import datapath

    kv = KeyedVectors.load_word2vec_format(vec, unicode_errors="replace")
    _, spearman, oov = kv.evaluate_word_pairs(datapath("wordsim353.tsv"))
    analogy, _ = kv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=100000)
    return {"wordsim353": float(spearman[0]), "wordsim_oov_pct": float(oov),
            "analogies": float(analogy), "vocabulary": len(kv.index_to_key)}


# -- the driver --------------------------------------------------------------------------------

def count_tokens(corpus):
    """Whitespace tokens plus one end of line per line, as fastText counts them."""
    n = 0
    with open(corpus, "rb") as f:
        for line in f:
            n += len(line.split()) + 1
    return n


def run(corpus, *, systems=SYSTEMS, models=MODELS, threads=2, repeats=1, timeout=3600.0,
        words=0, log=None):
    """Train and evaluate every (repeat, model, system), systems alternating; returns
    ``(markdown table, {"corpus", "tokens", "records"})``. Builds ``corpus`` first (the first
    ``words`` words when not 0) if it does not exist."""
    if not os.path.exists(corpus):
        cmd = [sys.executable, str(Path(__file__).with_name("make_wordvec_corpus.py")), "-o", corpus]
        subprocess.run(cmd + (["--words", str(words)] if words else []), check=True)
    tokens = count_tokens(corpus)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    records = []
    with tempfile.TemporaryDirectory(prefix="bench_wordvec_") as scratch:
        runs = [(rep, model, system) for rep in range(repeats)
                for model in models for system in systems]
        for rep, model, system in runs:
            vec = os.path.join(scratch, f"{system}.{model}.vec")
            child = run_child([sys.executable, __file__, "--worker", system, model, corpus, vec,
                               str(threads)], env, timeout, scratch)
            rec = {"system": system, "model": model, "repeat": rep, "wall_s": child.wall_s,
                   "peak_rss_mb": child.peak_rss_mb, "other_load": child.other_load,
                   "returncode": child.returncode}
            if child.returncode == 0:
                rec.update(json.loads(child.stdout.strip().splitlines()[-1]))
                rec["tok_s_thread"] = tokens * EPOCH / rec["train_s"] / threads
                rec.update(evaluate(vec))
                os.unlink(vec)
            else:
                rec["error"] = child.stderr.strip().splitlines()[-1:]
            records.append(rec)
            (log or _log_stderr)(json.dumps(rec))
    table = markdown(records, corpus, tokens, threads)
    return table, {"corpus": corpus, "tokens": tokens, "records": records}


def _log_stderr(msg):
    print(msg, file=sys.stderr, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=5, metavar=("SYSTEM", "MODEL", "CORPUS", "VEC", "THREADS"))
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--words", type=int, default=0, help="Build a prefix corpus of N words.")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--out", help="Markdown table here.")
    ap.add_argument("--json", help="Records here.")
    args = ap.parse_args(argv)
    if args.worker:
        system, model, corpus, vec, threads = args.worker
        worker(system, model, corpus, vec, int(threads))
        return
    table, result = run(args.corpus, systems=args.systems.split(","),
                        models=args.models.split(","), threads=args.threads,
                        repeats=args.repeats, timeout=args.timeout, words=args.words)
    print(table)
    if args.out:
        Path(args.out).write_text(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine_info(), **result}, indent=1))


def markdown(records, corpus, tokens, threads):
    lines = [f"Corpus {corpus}: {tokens:,} tokens; dim {DIM}, {EPOCH} epochs, min_count "
             f"{MIN_COUNT}, {threads} threads. Medians over repeats.", "",
             "| model | system | train s | vs fastText | tok/s/thread | peak RSS MB | WordSim353 | analogies |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for model in MODELS:
        base = summarize([r.get("train_s") for r in records
                          if r["model"] == model and r["system"] == "fasttext"])
        for system in SYSTEMS:
            rs = [r for r in records if r["model"] == model and r["system"] == system]
            if not rs:
                continue
            med = {k: summarize([r.get(k) for r in rs]) for k in
                   ("train_s", "tok_s_thread", "peak_rss_mb", "wordsim353", "analogies")}
            if med["train_s"] is None:
                lines.append(f"| {model} | {system} | failed | | | | | |")
                continue
            ratio = f"{med['train_s'][0] / base[0]:.2f}x" if base else ""
            lines.append(f"| {model} | {system} | {med['train_s'][0]:.1f} | {ratio} | "
                         f"{med['tok_s_thread'][0]:,.0f} | {med['peak_rss_mb'][0]:,.0f} | "
                         f"{med['wordsim353'][0]:.3f} | {med['analogies'][0]:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
