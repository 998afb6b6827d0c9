#!/usr/bin/env python
"""A large supervised corpus for the scale benchmark: IMDB (train + test) repeated and perturbed.

Each repetition shuffles the 50,000 reviews and perturbs every one: it drops every ``m``-th
word from a random start (``m`` in 6..12) and rotates the words by a random amount, so no two
repetitions hold the same lines or the same bigrams at the rotation point, while the vocabulary
stays IMDB's (the corpus grows, the dictionary does not: what an out-of-core run on a big real
corpus of one domain looks like). Labels stay first. Plain text, or gzip with ``.gz``.

    python scripts/make_scale_corpus.py --gb 1.5 -o /tmp/scale_1.5g.txt
"""

import argparse
import gzip
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DEFAULT_DATA_DIR, LABEL_PREFIX  # noqa: E402

PARTS = (("imdb", "train"), ("imdb", "test"))


def source_lines(data_dir):
    """``(labels, words)`` of every line of :data:`PARTS`, as bytes."""
    lines = []
    prefix = LABEL_PREFIX.encode()
    for name, split in PARTS:
        with gzip.open(Path(data_dir) / name / f"{split}.txt.gz", "rb") as f:
            for raw in f:
                tokens = raw.split()
                labels = [t for t in tokens if t.startswith(prefix)]
                lines.append((b" ".join(labels), [t for t in tokens if not t.startswith(prefix)]))
    return lines


def perturbed(labels, words, rng):
    kept = list(words)
    del kept[rng.randrange(12)::rng.randrange(6, 13)]
    k = rng.randrange(len(kept)) if kept else 0
    return labels + b" " + b" ".join(kept[k:] + kept[:k]) + b"\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--gb", type=float, required=True, help="size to reach, in 10**9 bytes (whole lines)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    lines = source_lines(args.data_dir)
    target = int(args.gb * 1e9)
    opener = gzip.open if args.output.endswith(".gz") else open
    written = 0
    with opener(args.output, "wb") as out:
        while written < target:
            order = list(range(len(lines)))
            rng.shuffle(order)
            block = b"".join(perturbed(*lines[i], rng) for i in order)
            block = block[:block.rfind(b"\n", 0, target - written) + 1] if written + len(block) > target else block
            out.write(block)
            written += len(block)
            if not block:
                break
    print(f"{args.output}: {written:,} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
