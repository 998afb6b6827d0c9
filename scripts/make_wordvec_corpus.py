#!/usr/bin/env python
"""The word-vector benchmark corpus: IMDB train + test and 20 Newsgroups train, text only.

Labels (``__label__*`` tokens) are stripped and the text lowercased; one document per line.
Bytes that are not UTF-8 (20 Newsgroups has Latin-1) pass through unchanged. ``--words N``
keeps the first N words (whole lines) for a prefix run.

    python scripts/make_wordvec_corpus.py -o /tmp/wordvec_corpus.txt
"""

import argparse
import gzip
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DEFAULT_DATA_DIR, LABEL_PREFIX  # noqa: E402

PARTS = (("imdb", "train"), ("imdb", "test"), ("20newsgroups", "train"))


def document_lines(data_dir):
    """The lowercased text of every document of :data:`PARTS`, as bytes without a newline."""
    for name, split in PARTS:
        with gzip.open(Path(data_dir) / name / f"{split}.txt.gz", "rb") as f:
            for raw in f:
                text = raw.decode("utf-8", "surrogateescape")
                words = [w for w in text.split() if not w.startswith(LABEL_PREFIX)]
                if words:
                    yield " ".join(words).lower().encode("utf-8", "surrogateescape")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    ap.add_argument("--words", type=int, default=0, help="Keep only the first N words (0: all).")
    args = ap.parse_args(argv)
    n_words = n_lines = 0
    with open(args.output, "wb") as out:
        for line in document_lines(args.data_dir):
            out.write(line + b"\n")
            n_words += line.count(b" ") + 1
            n_lines += 1
            if args.words and n_words >= args.words:
                break
    print(f"{args.output}: {n_lines:,} lines, {n_words:,} words", file=sys.stderr)


if __name__ == "__main__":
    main()
