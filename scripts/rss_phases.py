"""Peak resident memory of one out-of-core training by phase, split into anonymous and file-backed pages.

``ru_maxrss`` (scripts/bench_scale.py) counts every resident page: the process's own memory
(anonymous) and the pages of mapped files, which are the shared libraries (~90 MB after
``import fastembed`` here) and the encoded corpus's pages touched since the trainer last
released them. This samples ``/proc/self/status`` every 20 ms during
``train_supervised(CORPUS, epoch=1, threads=2, dim=DIM)`` and prints, for each phase (read,
init, train: ``train_stats``' times), the sample of highest VmRSS with its RssAnon and RssFile,
and the highest of each.

    python scripts/rss_phases.py /tmp/scale/corpus_3g.txt 10

``--cache-dir DIR`` keeps the encoding for the next run (its read phase then maps the files);
``--deterministic`` trains with ``deterministic=True``; ``--segment-lines N`` sets
``out_of_core.SEGMENT_LINES`` (the lines of a piece of an epoch's order); ``--word-ngrams 1``
trains on words alone, with no n-gram rows (fastText's supervised default), so the model is
the vocabulary's rows only.
"""

import argparse
import resource
import threading
import time

import fastembed.text.out_of_core as ooc
from fastembed.model import train_supervised


def main(corpus, dim, cache_dir=None, deterministic=False, threads=2, segment_lines=None, word_ngrams=None):
    ooc.OUT_OF_CORE_MIN_BYTES = 0  # the streaming path whatever the size
    if segment_lines is not None:
        ooc.SEGMENT_LINES = segment_lines
    samples, done = [], threading.Event()

    def sample():
        while not done.is_set():
            fields = {}
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(("RssAnon", "RssFile", "VmRSS")):
                        key, value = line.split(":")
                        fields[key] = int(value.split()[0]) * 1024
            samples.append((time.perf_counter(), fields))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    settings = {} if word_ngrams is None else {"word_ngrams": word_ngrams}
    model = train_supervised(corpus, epoch=1, threads=threads, dim=dim, verbose=0, cache_dir=cache_dir,
                             deterministic=deterministic, **settings)
    done.set()
    sampler.join()
    s = model.train_stats
    edges = [0.0, s["read_s"], s["read_s"] + s["init_s"], s["read_s"] + s["init_s"] + s["train_s"]]
    for name, a, b in zip(("read", "init", "train"), edges, edges[1:]):
        phase = [f for t, f in samples if a <= t - t0 < b]
        if phase:
            top = max(phase, key=lambda f: f["VmRSS"])
            print(f"{name:5s} {b - a:7.1f} s  peak VmRSS {top['VmRSS'] / 1e6:7.1f} MB  anon {top['RssAnon'] / 1e6:7.1f}"
                  f"  file {top['RssFile'] / 1e6:7.1f}  (highest anon {max(f['RssAnon'] for f in phase) / 1e6:.1f},"
                  f" file {max(f['RssFile'] for f in phase) / 1e6:.1f})")
    tables = [model.input_matrix, model.output_matrix, model.idf, model.doc_freq,
              *[a for state in model.optimizer_state or () for a in state]]
    print(f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.1f} MB, lines {s.get('examples')}, "
          f"rows {model.dictionary.n_rows}, tables {sum(a.nbytes for a in tables if a is not None) / 1e6:.1f} MB")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus")
    p.add_argument("dim", nargs="?", type=int, default=10)
    p.add_argument("--cache-dir")
    p.add_argument("--deterministic", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--segment-lines", type=int)
    p.add_argument("--word-ngrams", type=int, help="default: the preset's (2)")
    a = p.parse_args()
    main(a.corpus, a.dim, a.cache_dir, a.deterministic, a.threads, a.segment_lines, a.word_ngrams)
