"""Peak resident memory of one out-of-core training by phase, split into anonymous and file-backed pages.

``ru_maxrss`` (scripts/bench_scale.py) counts every resident page: the process's own memory
(anonymous) and the pages of mapped files, which are the shared libraries (~90 MB after
``import fastembed`` here) and the encoded corpus's pages touched since the trainer last
released them. This samples ``/proc/self/status`` every 20 ms during
``train_supervised(CORPUS, epoch=1, threads=2, dim=DIM)`` and prints, for each phase (read,
init, train: ``train_stats``' times), the sample of highest VmRSS with its RssAnon and RssFile.

    python scripts/rss_phases.py /tmp/scale/corpus_3g.txt 10
"""

import resource
import sys
import threading
import time

import fastembed.text.out_of_core as ooc
from fastembed.model import train_supervised


def main(corpus, dim):
    ooc.OUT_OF_CORE_MIN_BYTES = 0  # the streaming path whatever the size
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
    model = train_supervised(corpus, epoch=1, threads=2, dim=dim, verbose=0)
    done.set()
    sampler.join()
    s = model.train_stats
    edges = [0.0, s["read_s"], s["read_s"] + s["init_s"], s["read_s"] + s["init_s"] + s["train_s"]]
    for name, a, b in zip(("read", "init", "train"), edges, edges[1:]):
        phase = [f for t, f in samples if a <= t - t0 < b]
        if phase:
            top = max(phase, key=lambda f: f["VmRSS"])
            print(f"{name:5s} {b - a:7.1f} s  peak VmRSS {top['VmRSS'] / 1e6:7.1f} MB  anon {top['RssAnon'] / 1e6:7.1f}"
                  f"  file {top['RssFile'] / 1e6:7.1f}")
    print(f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.1f} MB, lines {s.get('examples')}, "
          f"rows {model.dictionary.n_rows}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10)
