"""The decisive check: fastembed.text against fastText itself (skipped without ``fasttext``).

fastText is trained in a subprocess per corpus (a second ``train_supervised`` in
one process tends to die with "Encountered NaN"); the test process only loads
the saved models.  With fastText's input matrix re-ordered into fastembed's
rows (word rows mapped by word bytes -- fastText's tie order is unspecified --
and the row of bucket ``bucket_ids[j]`` as row ``nwords + j``; fastText's rows
of the buckets training never used set to zero, as fastembed's zero row), the
mean of every encoded bag must equal fastText's sentence vector of that line.

The models are "trained" with ``epoch=0``: the dictionary is built exactly as
for real training.  The input matrix is then overwritten in place with seeded
uniform(-1, 1) rows, so that fastText's own ``getSentenceVector`` averages
rows whose values we know; distinct random rows make any wrong row visible.
(With this fastText build, ``epoch >= 1`` on these small slices fails with
"Encountered NaN" even in a fresh process, and the ``epoch=0`` matrix can hold
huge uninitialised-looking values.)
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

fasttext = pytest.importorskip("fasttext")
from fasttext import FastText as _FT  # noqa: E402

from fastembed.text import build_corpus  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
DIM = 8

_TRAIN = textwrap.dedent(
    """
    import json, sys
    import fasttext
    inp, out, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    m = fasttext.train_supervised(input=inp, dim=%d, epoch=0, thread=1, verbose=0, **params)
    m.save_model(out)
    """
    % DIM
)


def synthetic(lines: list[bytes]) -> bytes:
    """A fixture slice made awkward: tabs, CRLF, NULs, labels mid-line, blank and label-only lines, no final newline."""
    out = []
    for i, ln in enumerate(lines):
        toks = ln.split(b" ")
        labels = [t for t in toks if t.startswith(b"__label__")]
        words = [t for t in toks if not t.startswith(b"__label__")]
        if i % 7 == 1:
            toks = words[: len(words) // 2] + labels + words[len(words) // 2 :]
        sep = [b" ", b"\t", b" \v ", b"\f", b"\0", b"  "][i % 6]
        line = sep.join(toks)
        if i % 11 == 2:
            line += b"\r"
        if i % 13 == 3:
            line = b"  " + line + b"\t"
        out.append(line)
        if i % 17 == 4:
            out.append(b"")
        if i % 19 == 5:
            out.append(b" ".join(labels))
    out.append(b"caf\xc3\xa9 na\xefve \xff\xfe __label__ABBR tail")
    return b"\n".join(out)  # last line unterminated


CASES = {
    "sst2-bigram": ("sst2_train_slice.txt.gz", dict(wordNgrams=2, bucket=1000)),
    "trec6-unigram": ("trec6_train_slice.txt.gz", dict(wordNgrams=1)),
    "reuters-multilabel-bigram": ("reuters21578_modapte_train_slice.txt.gz", dict(wordNgrams=2, bucket=1000)),
    "20ng-latin1-bigram": ("20newsgroups_train_latin1_slice.txt.gz", dict(wordNgrams=2, bucket=1000)),
    "sms-trigram-mincount2": ("sms_spam_train_slice.txt.gz", dict(wordNgrams=3, bucket=1000, minCount=2)),
    "sst2-charngrams-mincount2": (
        "sst2_train_slice.txt.gz",
        dict(wordNgrams=2, bucket=1000, minn=2, maxn=4, minCount=2),
    ),
    "20ng-latin1-charngrams": ("20newsgroups_train_latin1_slice.txt.gz", dict(wordNgrams=2, bucket=2000, minn=3, maxn=5)),
    "synthetic-trec6-bigram": ("synthetic:trec6_train_slice.txt.gz", dict(wordNgrams=2, bucket=1000)),
}


def fastembed_kw(params: dict) -> dict:
    names = {"wordNgrams": "word_ngrams", "bucket": "bucket", "minCount": "min_count", "minn": "minn", "maxn": "maxn"}
    return {names[k]: v for k, v in params.items()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """case id -> (corpus path, fastText model), each model trained in its own subprocess."""
    root = tmp_path_factory.mktemp("fasttext")
    cache = {}

    def get(case):
        if case not in cache:
            fixture, params = CASES[case]
            if fixture.startswith("synthetic:"):
                with gzip.open(os.path.join(FIXTURES, fixture.split(":", 1)[1]), "rb") as f:
                    data = synthetic(f.read().split(b"\n")[:-1])
            else:
                with gzip.open(os.path.join(FIXTURES, fixture), "rb") as f:
                    data = f.read()
            path = root / (case + ".txt")  # fastText cannot read gzip
            path.write_bytes(data)
            model = root / (case + ".bin")
            subprocess.run(
                [sys.executable, "-c", _TRAIN, str(path), str(model), json.dumps(params)],
                check=True,
                timeout=120,
            )
            ft = fasttext.load_model(str(model))
            # epoch=0 leaves the input matrix as initialised, which in this
            # build can hold huge values; overwrite it in place (a zero-copy,
            # writable view) with well-scaled random rows.
            matrix = np.asarray(ft.f.getInputMatrix())
            assert not matrix.flags.owndata and matrix.flags.writeable
            matrix[:] = np.random.default_rng(len(cache)).uniform(-1, 1, matrix.shape).astype(np.float32)
            assert np.array_equal(ft.get_input_matrix(), matrix)
            cache[case] = (path, ft)
        return cache[case]

    return get


def row_map(d, ft) -> np.ndarray:
    """fastText input-matrix row of each fastembed row but the zero row."""
    rows = np.empty(d.unseen_row, dtype=np.int64)
    for i, w in enumerate(d.word_bytes):
        rows[i] = ft.f.getWordId(w)
    assert rows[: d.nwords].min() >= 0, "a fastembed word is unknown to fastText"
    assert len(set(rows[: d.nwords].tolist())) == d.nwords
    rows[d.nwords :] = d.nwords + d.bucket_ids  # fastText has as many words
    return rows


def fastembed_row(d, ft) -> dict:
    """fastembed row of each fastText row (buckets without a row: the zero row)."""
    fe = {int(r): i for i, r in enumerate(row_map(d, ft))}
    return {r: fe.get(r, d.unseen_row) for r in range(d.nwords + d.bucket)}


def zero_unused_buckets(d, ft):
    """Zero fastText's rows of the buckets fastembed holds no row for (in place)."""
    matrix = np.asarray(ft.f.getInputMatrix())
    unused = np.ones(d.bucket, dtype=bool)
    unused[d.bucket_ids] = False
    matrix[d.nwords + np.flatnonzero(unused)] = 0.0


def sentence_vector(ft, line: bytes) -> np.ndarray:
    v = _FT.fasttext.Vector(DIM)
    ft.f.getSentenceVector(v, line + b"\n")  # what get_sentence_vector does, on bytes
    return np.array(v)


@pytest.mark.filterwarnings("ignore::fastembed.text.SkippedLinesWarning")
@pytest.mark.parametrize("case", list(CASES))
def test_bag_means_equal_fasttext_sentence_vectors(trained, case):
    path, ft = trained(case)
    d, enc = build_corpus(path, **fastembed_kw(CASES[case][1]))
    zero_unused_buckets(d, ft)
    matrix = ft.get_input_matrix()
    assert matrix.shape == (d.nwords + d.bucket, DIM)
    table = np.zeros((d.n_rows, DIM))
    table[: d.unseen_row] = matrix[row_map(d, ft)]

    lines = path.read_bytes().split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the file ends with a newline: no final partial line
    enc_all = d.encode(path, keep_unlabelled=True)
    assert enc_all.n_lines == len(lines)
    mine = np.zeros((len(lines), DIM))
    theirs = np.zeros((len(lines), DIM))
    for i, line in enumerate(lines):
        bag = enc_all.bag(i)
        if len(bag):
            mine[i] = table[bag].mean(axis=0)
        theirs[i] = sentence_vector(ft, line)
    np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    # the training encoding is the same bags, restricted to labelled lines
    kept = [i for i in range(len(lines)) if len(enc_all.labels_of(i))]
    assert enc.n_lines == len(kept) and enc.n_skipped == len(lines) - len(kept)
    for b, i in enumerate(kept):
        assert np.array_equal(enc.bag(b), enc_all.bag(i))


@pytest.mark.filterwarnings("ignore::fastembed.text.SkippedLinesWarning")
@pytest.mark.parametrize("case", list(CASES))
def test_words_labels_counts_equal_fasttext(trained, case):
    path, ft = trained(case)
    d, _ = build_corpus(path, **fastembed_kw(CASES[case][1]))
    words, wfreq = ft.get_words(include_freq=True, on_unicode_error="surrogateescape")
    labels, lfreq = ft.get_labels(include_freq=True, on_unicode_error="surrogateescape")
    ft_words = [(w.encode("utf-8", "surrogateescape"), int(c)) for w, c in zip(words, wfreq)]
    assert set(zip(d.word_bytes, d.word_counts.tolist())) == set(ft_words)
    assert d.nwords == len(ft_words)
    assert sorted(zip(d.labels, d.label_counts.tolist())) == sorted(zip(labels, lfreq.tolist()))
    for counts in (d.word_counts, np.asarray(wfreq), d.label_counts, np.asarray(lfreq)):
        assert np.all(np.diff(counts) <= 0)
    assert d.bucket == ft.f.getArgs().bucket


@pytest.mark.parametrize("case", ["sst2-charngrams-mincount2", "20ng-latin1-charngrams"])
def test_word_ids_equal_fasttext_get_subwords(trained, case):
    path, ft = trained(case)
    d, _ = build_corpus(path, **fastembed_kw(CASES[case][1]))
    rows = fastembed_row(d, ft)
    probes = d.word_bytes[:50] + d.word_bytes[-50:] + [
        b"</s>", b"unseen", "caf\u00e9".encode(), "\u65e5\u672c\u8a9e".encode(), b"\xe9t\xe9", b"\xff", b"a",
        "\U0001f600x".encode(),
    ]
    for w in probes:
        _, theirs = ft.f.getSubwords(w, "surrogateescape")
        assert d.word_ids(w).tolist() == [rows[r] for r in theirs], w


def test_fnv_matches_fasttext_subword_ids(trained):
    """Non-ASCII (signed-byte) hashing agrees with fastText's get_subword_id."""
    from fastembed.text import fnv1a_hash

    _, ft = trained("20ng-latin1-charngrams")
    bucket = ft.f.getArgs().bucket
    nwords = ft.get_input_matrix().shape[0] - bucket
    for s in ["\u00e9", "caf\u00e9", "\u65e5\u672c", "\U0001f600", "abc", "<\u00fc>"]:
        assert ft.get_subword_id(s) == nwords + fnv1a_hash(s.encode()) % bucket
