"""fastText's model files (fastembed.fasttext_format): against fastText itself, and hostile files.

Part 1 (needs ``fasttext``): tiny fastText models trained in subprocesses (one training per
process, ``thread=1``) on real slices from tests/fixtures -- softmax with word bigrams, ova on
multi-label Reuters, hs, character n-grams on non-UTF-8 bytes, and a skipgram model -- are
saved as ``.bin`` and quantized to ``.ftz`` (pruned with ``cutoff`` and ``qnorm``; and unpruned
with ``dsub=3``). What read_fasttext returns must equal what fastText's binding reports for the
same file; write_fasttext must give the file back byte for byte; files written from edited or
re-quantized contents must load in fastText and behave as their arrays say.

The subprocesses run with ``MALLOC_PERTURB_=255``: fastText 0.9.x initialises only the first
tenth of the input matrix when ``thread=1`` (``DenseMatrix::uniformThread`` fills block
``[block * m * n / 10, (block + 1) * m * n / 10)`` for blocks ``0..thread-1``), leaving the rest
as whatever the heap held, which on small models is garbage that ends training with
"Encountered NaN". glibc then hands out zeroed memory (fill byte 255 ^ 0xff), so those rows
start at zero instead, deterministically.

Part 2 (no fastText needed): a tiny model written by write_fasttext, then truncated at every
offset, padded, or patched field by field; every bad file must raise one ModelFileError
(one line), without allocating more than a little memory.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from fastembed.errors import ArgumentError, ModelFileError
from fastembed.fasttext import FastTextFile, read_fasttext, write_fasttext
from fastembed.quantize import QuantizedMatrix, prune_rows, quantize_matrix

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DIM = 10
CUTOFF = 500

_TRAIN = textwrap.dedent(
    f"""
    import json, sys
    import fasttext
    inp, out, kind, params, cutoff = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5])
    common = dict(input=inp, dim={DIM}, epoch=5, thread=1, verbose=0)
    if kind == "supervised":
        m = fasttext.train_supervised(**common, **params)
    else:
        m = fasttext.train_unsupervised(**common, model=kind, **params)
    m.save_model(out + "/model.bin")
    if kind == "supervised":
        m.quantize(input=inp, qnorm=True, cutoff=cutoff, retrain=False, thread=1)
        m.save_model(out + "/pruned.ftz")
        m = fasttext.load_model(out + "/model.bin")
        m.quantize(input=inp, dsub=3, retrain=False, thread=1)
        m.save_model(out + "/full.ftz")
    """
)

CASES = {
    "softmax-bigram": ("trec6_train_slice.txt.gz", "supervised", dict(wordNgrams=2, bucket=2000)),
    "ova-multilabel": ("reuters21578_modapte_train_slice.txt.gz", "supervised",
                       dict(loss="ova", wordNgrams=2, bucket=2000)),
    "hs": ("sst2_train_slice.txt.gz", "supervised", dict(loss="hs", wordNgrams=2, bucket=2000)),
    "charngrams-latin1": ("20newsgroups_train_latin1_slice.txt.gz", "supervised",
                          dict(minn=2, maxn=4, bucket=3000)),
    "skipgram": ("sms_spam_train_slice.txt.gz", "skipgram", dict(minn=3, maxn=5, bucket=2000, minCount=2)),
}
SUPERVISED = [c for c in CASES if CASES[c][1] == "supervised"]


@pytest.fixture(scope="module")
def fasttext():
    return pytest.importorskip("fasttext")


@pytest.fixture(scope="module")
def trained(fasttext, tmp_path_factory):
    """Case name -> (directory with model.bin [pruned.ftz, full.ftz], corpus path, test lines)."""
    out = {}
    env = dict(os.environ, MALLOC_PERTURB_="255")
    for name, (fixture, kind, params) in CASES.items():
        d = tmp_path_factory.mktemp(name)
        corpus = d / "train.txt"
        corpus.write_bytes(gzip.decompress((FIXTURES / fixture).read_bytes()))
        subprocess.run([sys.executable, "-c", _TRAIN, str(corpus), str(d), kind, json.dumps(params),
                        str(CUTOFF)], check=True, env=env, timeout=300)
        lines = corpus.read_bytes().decode("utf-8", "replace").splitlines()[:60]
        out[name] = (d, corpus, lines)
    return out


def _load(fasttext, path):
    return fasttext.load_model(str(path))


def _decoded(entries):
    return [e.decode("utf-8", "replace") for e in entries]


def _check_dictionary(ft, m, supervised):
    words, wcounts = m.get_words(include_freq=True, on_unicode_error="replace")
    assert _decoded(ft.words) == words
    np.testing.assert_array_equal(ft.word_counts, wcounts)
    if supervised:  # (an unsupervised model's get_labels gives its words)
        labels, lcounts = m.get_labels(include_freq=True)
        assert _decoded(ft.labels) == labels
        np.testing.assert_array_equal(ft.label_counts, lcounts)


def _fasttext_sigmoid(x):
    """fastText's ``Loss::sigmoid``, the one ova predicts with: a table of 513 values of the
    sigmoid on [-8, 8], looked up at ``floor((x + 8) * 32)``; 0 below -8, 1 above 8. Returns
    the values at the two nearest table indices, for scores within 1e-4 of an index boundary
    (float32 against float64 scores may fall either side)."""
    table = 1 / (1 + np.exp(-(np.arange(513, dtype=np.float32) * 16 / 512 - 8).astype(np.float64)))
    pos = (np.clip(x, -8, 8) + 8) * 32
    lo = np.floor(pos - 1e-4 * 32).astype(np.int64).clip(0, 512)
    hi = np.floor(pos + 1e-4 * 32).astype(np.int64).clip(0, 512)
    low, high = table[lo], table[hi]
    low[x < -8], high[x < -8] = 0, 0
    low[x > 8], high[x > 8] = 1, 1
    return low, high


def _check_predictions(m, ft, lines, output):
    """fastText's probabilities (every label) equal those of ``output @ hidden``, with fastText's
    own hidden vector (the mean of the line's input rows): a softmax, or fastText's table
    sigmoid for ova. fastText reports ``exp(log(p + 1e-5))`` (``Loss::findKBest`` takes
    ``std_log``, which adds 1e-5), so p + 1e-5."""
    labels = _decoded(ft.labels)
    for line in lines:
        hidden = m.get_sentence_vector(line).astype(np.float64)
        scores = output.astype(np.float64) @ hidden
        got = {lab: p for p, lab in m.f.predict(line + "\n", -1, 0.0, "replace")}
        got = np.array([got[lab] - 1e-5 for lab in labels])
        if ft.args["loss"] == "ova":
            low, high = _fasttext_sigmoid(scores)
            assert np.all((np.abs(got - low) < 1e-6) | (np.abs(got - high) < 1e-6))
        else:
            e = np.exp(scores - scores.max())
            np.testing.assert_allclose(got, e / e.sum(), rtol=1e-5, atol=1e-6)


# -- part 1: against fastText ------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_bin_equals_fasttext(fasttext, trained, case):
    d, _, _ = trained[case]
    ft = read_fasttext(d / "model.bin")
    m = _load(fasttext, d / "model.bin")
    a = m.f.getArgs()
    model_names = {"supervised": "sup", "skipgram": "sg", "cbow": "cbow"}
    assert ft.args == dict(dim=a.dim, ws=a.ws, epoch=a.epoch, minCount=a.minCount, neg=a.neg,
                           wordNgrams=a.wordNgrams, loss=a.loss.name, model=model_names[a.model.name],
                           bucket=a.bucket, minn=a.minn, maxn=a.maxn, lrUpdateRate=a.lrUpdateRate, t=a.t)
    assert (ft.version, ft.pruneidx_size, ft.quantized) == (12, -1, False)
    _check_dictionary(ft, m, ft.supervised)
    np.testing.assert_array_equal(ft.input_matrix, m.get_input_matrix())
    np.testing.assert_array_equal(ft.output_matrix, m.get_output_matrix())
    assert ft.input_matrix.shape == (ft.nwords + ft.args["bucket"], DIM)


@pytest.mark.parametrize("name", ["model.bin", "pruned.ftz", "full.ftz"])
@pytest.mark.parametrize("case", list(CASES))
def test_write_gives_the_file_back_byte_for_byte(trained, tmp_path, case, name):
    src = trained[case][0] / name
    if not src.exists():
        pytest.skip("fastText quantizes supervised models only")
    write_fasttext(tmp_path / name, read_fasttext(src))
    assert (tmp_path / name).read_bytes() == src.read_bytes()


@pytest.mark.parametrize("name", ["model.bin", "pruned.ftz"])
@pytest.mark.parametrize("case", SUPERVISED)
def test_fasttext_predicts_on_a_rewritten_file_as_on_the_original(fasttext, trained, tmp_path, case, name):
    d, _, lines = trained[case]
    write_fasttext(tmp_path / name, read_fasttext(d / name))
    original, rewritten = _load(fasttext, d / name), _load(fasttext, tmp_path / name)
    for line in lines:
        assert rewritten.f.predict(line + "\n", -1, 0.0, "replace") == \
            original.f.predict(line + "\n", -1, 0.0, "replace")


@pytest.mark.parametrize("case", SUPERVISED)
def test_ftz_equals_fasttext(fasttext, trained, case):
    d, _, lines = trained[case]
    b = read_fasttext(d / "model.bin")
    for name, pruned, dsub, qnorm in (("pruned.ftz", True, 2, True), ("full.ftz", False, 3, False)):
        z = read_fasttext(d / name)
        m = _load(fasttext, d / name)
        assert z.quantized and not isinstance(z.output_matrix, QuantizedMatrix)
        q = z.input_matrix
        assert (q.dsub, q.qnorm, q.ksub) == (dsub, qnorm, 256)
        assert z.args == b.args and z.ntokens == b.ntokens
        _check_dictionary(z, m, True)
        dense = z.dense_input()
        assert dense.shape == (CUTOFF if pruned else b.input_matrix.shape[0], DIM)
        # fastText's getInputVector rebuilds a row as norm * centroid: the very same floats
        fasttext_rows = np.stack([m.get_input_vector(i) for i in range(dense.shape[0])])
        np.testing.assert_array_equal(dense, fasttext_rows)
        np.testing.assert_array_equal(z.output_matrix, b.output_matrix)
        if not pruned:
            assert z.pruneidx_size == -1 and z.entries == b.entries
            # fastText's own PQ: the rows keep most of their energy (measured: 6% error, softmax)
            assert np.mean(np.square(dense - b.input_matrix)) < 0.2 * np.mean(np.square(b.input_matrix))
        if z.args["loss"] != "hs":  # (hs predicts by walking fastText's Huffman tree)
            _check_predictions(m, z, lines[:20], z.output_matrix)


@pytest.mark.parametrize("case", SUPERVISED)
def test_prune_rows_is_fasttexts_cutoff(trained, case):
    """prune_rows on the .bin keeps the words and buckets fastText's cutoff kept, in its order
    (up to rows of equal norm, whose order fastText leaves unspecified)."""
    d, _, _ = trained[case]
    b, z = read_fasttext(d / "model.bin"), read_fasttext(d / "pruned.ftz")
    p = prune_rows(b.input_matrix, b.nwords, CUTOFF, keep=[b.entries.index(b"</s>")])
    assert [b.entries[i] for i in p.word_rows] == z.words
    np.testing.assert_array_equal(b.counts[p.word_rows], z.word_counts)
    assert z.pruneidx_size == p.ngram_rows.size
    ours = dict(zip((p.ngram_rows - b.nwords).tolist(), range(p.ngram_rows.size)))
    theirs = dict(z.pruneidx.tolist())
    assert set(ours) == set(theirs)
    norms = np.linalg.norm(b.input_matrix, axis=1)
    for bucket in ours:  # the same place, or a place held by a row of the same norm
        j = theirs[bucket]
        assert norms[b.nwords + bucket] == norms[p.ngram_rows[j]]


def test_bucket_rows_follow_the_pruned_index(fasttext, trained):
    """fastText's getSubwords maps character n-gram buckets through pruneidx: bucket_rows must
    give the same rows, in the .bin (no pruning) and in the pruned .ftz."""
    d, _, _ = trained["charngrams-latin1"]
    b, z = read_fasttext(d / "model.bin"), read_fasttext(d / "pruned.ftz")
    mb, mz = _load(fasttext, d / "model.bin"), _load(fasttext, d / "pruned.ftz")
    checked = 0
    for word in _decoded(b.words[1:200]):
        ids_b = np.asarray(mb.get_subwords(word)[1])
        buckets = ids_b[1:] - b.nwords  # after the word's own row
        np.testing.assert_array_equal(b.bucket_rows(buckets), ids_b[1:])
        rows = z.bucket_rows(buckets)
        ids_z = np.asarray(mz.get_subwords(word)[1])
        kept = mz.get_word_id(word) >= 0
        np.testing.assert_array_equal(ids_z[int(kept):], rows[rows >= 0])
        checked += int((rows < 0).any())
    assert checked > 0  # some n-grams were pruned away


@pytest.mark.parametrize("case", ["softmax-bigram", "ova-multilabel"])
def test_fasttext_loads_an_edited_bin(fasttext, trained, tmp_path, case):
    d, _, lines = trained[case]
    ft = read_fasttext(d / "model.bin")
    rng = np.random.default_rng(0)
    ft.input_matrix = (ft.input_matrix * 3 + rng.normal(0, 0.01, ft.input_matrix.shape)).astype(np.float32)
    ft.output_matrix = rng.normal(0, 1, ft.output_matrix.shape).astype(np.float32)
    write_fasttext(tmp_path / "edited.bin", ft)
    m = _load(fasttext, tmp_path / "edited.bin")
    np.testing.assert_array_equal(m.get_input_matrix(), ft.input_matrix)
    np.testing.assert_array_equal(m.get_output_matrix(), ft.output_matrix)
    _check_predictions(m, ft, lines[:30], ft.output_matrix)


def test_fasttext_loads_our_quantized_and_pruned_file(fasttext, trained, tmp_path):
    """Prune and quantize a .bin with fastembed (output matrix too: qout), write a .ftz: fastText
    loads it, rebuilds our rows exactly, maps n-grams through our pruned index, and predicts
    from our codebooks."""
    d, _, lines = trained["charngrams-latin1"]
    b = read_fasttext(d / "model.bin")
    p = prune_rows(b.input_matrix, b.nwords, 400, keep=[b.entries.index(b"</s>")])
    keep = np.concatenate([p.word_rows, np.arange(b.nwords, len(b.entries))])
    pairs = np.stack([p.ngram_rows - b.nwords, np.arange(p.ngram_rows.size)], axis=1).astype(np.int32)
    ft = FastTextFile(
        dict(b.args), [b.entries[i] for i in keep], b.counts[keep], b.types[keep], b.ntokens,
        quantize_matrix(b.input_matrix[p.rows], qnorm=True, niter=5),
        quantize_matrix(b.output_matrix, qnorm=True, niter=5),  # < 256 labels: a centroid each
        pruneidx_size=int(pairs.shape[0]), pruneidx=pairs)
    write_fasttext(tmp_path / "ours.ftz", ft)
    m = _load(fasttext, tmp_path / "ours.ftz")
    assert m.is_quantized()
    _check_dictionary(ft, m, True)
    dense = ft.dense_input()
    np.testing.assert_array_equal(np.stack([m.get_input_vector(i) for i in range(dense.shape[0])]), dense)
    mb = _load(fasttext, d / "model.bin")
    for word in _decoded(b.words[1:100]):
        buckets = np.asarray(mb.get_subwords(word)[1])[1:] - b.nwords
        rows = ft.bucket_rows(buckets)
        ids = np.asarray(m.get_subwords(word)[1])
        np.testing.assert_array_equal(ids[int(m.get_word_id(word) >= 0):], rows[rows >= 0])
    _check_predictions(m, ft, lines[:30], ft.dense_output())
    assert read_fasttext(tmp_path / "ours.ftz").dense_output().tobytes() == ft.dense_output().tobytes()


# -- part 2: hostile files (no fastText needed) ----------------------------------------------------

WORDS = [b"</s>", b"the", b"caf\xc3\xa9", b"\xff\xfe", b"a"]
LABELS = [b"__label__x", b"__label__y"]


def tiny(quantized=False):
    """A tiny model: 5 words, 2 labels, dim 3, bucket 4; quantized: a pruned .ftz with qnorm and
    a quantized output."""
    rng = np.random.default_rng(0)
    args = dict(dim=3, ws=5, epoch=5, minCount=1, neg=5, wordNgrams=2, loss="softmax", model="sup",
                bucket=4, minn=0, maxn=0, lrUpdateRate=100, t=1e-4)
    entries = WORDS + LABELS
    counts = np.array([9, 5, 3, 2, 1, 7, 4], dtype=np.int64)
    types = np.array([0] * 5 + [1] * 2, dtype=np.int8)
    if not quantized:
        return FastTextFile(args, entries, counts, types, 40,
                            rng.normal(size=(9, 3)).astype(np.float32),
                            rng.normal(size=(2, 3)).astype(np.float32))

    def pq(rows):
        return QuantizedMatrix(rng.normal(size=3 * 256).astype(np.float32),
                               rng.integers(0, 256, (rows, 2)).astype(np.uint8), 3, 2,
                               rng.integers(0, 256, rows).astype(np.uint8),
                               rng.uniform(0, 2, 256).astype(np.float32))

    pairs = np.array([[3, 1], [0, 0]], dtype=np.int32)
    return FastTextFile(args, entries, counts, types, 40, pq(7), pq(2), 2, pairs)


def layout(ft):
    """Offsets of the fields of a file written from ``ft`` (fastText's layout, spelled out)."""
    at = {"magic": 0, "version": 4}
    for i, name in enumerate(["dim", "ws", "epoch", "minCount", "neg", "wordNgrams", "loss", "model",
                              "bucket", "minn", "maxn", "lrUpdateRate"]):
        at[name] = 8 + 4 * i
    at.update(t=56, size=64, nwords=68, nlabels=72, ntokens=76, pruneidx_size=84, entries=92)
    at["first_type"] = 92 + len(ft.entries[0]) + 1 + 8
    pos = 92 + sum(len(e) + 10 for e in ft.entries)
    at["pruneidx"] = pos
    pos += 8 * max(ft.pruneidx_size, 0)
    for which, matrix in (("input", ft.input_matrix), ("output", ft.output_matrix)):
        at[f"{which}_flag"] = pos
        pos += 1
        if isinstance(matrix, QuantizedMatrix):
            at[f"{which}_qnorm"], at[f"{which}_rows"], at[f"{which}_cols"] = pos, pos + 1, pos + 9
            at[f"{which}_codesize"] = pos + 17
            pos += 21 + matrix.codes.size
            at[f"{which}_pq"] = pos  # dim, nsubq, dsub, lastdsub
            pos += 16 + 4 * matrix.centroids.size
            if matrix.qnorm:
                pos += matrix.rows
                at[f"{which}_npq"] = pos
                pos += 16 + 4 * 256
        else:
            at[f"{which}_rows"], at[f"{which}_cols"] = pos, pos + 8
            pos += 16 + 4 * matrix.size
    at["end"] = pos
    return at


@pytest.fixture(params=[False, True], ids=["bin", "ftz"])
def tiny_file(request, tmp_path):
    ft = tiny(request.param)
    path = tmp_path / ("tiny.ftz" if request.param else "tiny.bin")
    write_fasttext(path, ft)
    return path, ft, layout(ft)


def _rejects(path, match=None):
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as info:
            read_fasttext(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    assert peak < 1 << 20, f"{peak} bytes allocated to reject {message}"
    if match:
        assert match in message, message
    return message


def _patched(path, offset, fmt, value):
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    out = path.with_name("patched" + path.suffix)
    out.write_bytes(bytes(data))
    return out


def test_tiny_round_trip(tiny_file):
    path, ft, at = tiny_file
    assert path.stat().st_size == at["end"]
    got = read_fasttext(path)
    assert got.args == ft.args and got.entries == ft.entries and got.ntokens == 40
    np.testing.assert_array_equal(got.counts, ft.counts)
    np.testing.assert_array_equal(got.pruneidx, ft.pruneidx)
    np.testing.assert_array_equal(got.dense_input(), ft.dense_input())
    np.testing.assert_array_equal(got.dense_output(), ft.dense_output())
    if got.quantized:
        np.testing.assert_array_equal(got.bucket_rows([0, 1, 2, 3]), [5, -1, -1, 6])
    else:
        np.testing.assert_array_equal(got.bucket_rows([0, 3]), [5, 8])


def test_truncated_files_are_rejected(tiny_file, tmp_path):
    path, _, at = tiny_file
    data = path.read_bytes()
    cut = tmp_path / "cut.bin"
    # every offset up to the matrices, around every field, and every 61st inside the arrays
    edges = {o + k for o in at.values() for k in (-2, -1, 0, 1, 2)}
    for n in range(len(data)):
        if n >= at["input_flag"] + 2 and n % 61 and n not in edges:
            continue
        cut.write_bytes(data[:n])
        with pytest.raises(ModelFileError, match="truncated|too short"):
            read_fasttext(cut)
    cut.write_bytes(data + b"\0")
    _rejects(cut, "1 bytes after the end")


HOSTILE = {
    # field: (struct format, value, words the message must hold)
    "magic": ("<i", 12345, "wrong magic"),
    "version": ("<i", 13, "version 13"),
    "loss": ("<i", 5, "unknown loss"),
    "model": ("<i", 0, "unknown model"),
    "size": ("<i", 2**31 - 1, "bad dictionary header"),
    "nwords": ("<i", -1, "bad dictionary header"),
    "ntokens": ("<q", -5, "bad dictionary header"),
    "pruneidx_size": ("<q", 2**40, "pruned-index size"),
    "first_type": ("<b", 7, "unknown type"),
    "input_flag": ("<b", 2, "not 0 or 1"),
    "input_rows": ("<q", 2**40, "input matrix"),
    "input_cols": ("<q", 0, "input matrix"),
    "output_rows": ("<q", -1, "output matrix"),
    "dim": ("<i", 4, "matrix is"),
}
HOSTILE_BIN = {
    "input_rows_huge": ("input_rows", "<q", 2**31 - 1, "truncated"),
    "input_cols_huge": ("input_cols", "<q", 2**31 - 1, "truncated"),
    "pruned_but_dense": ("pruneidx_size", "<q", 0, "needs a quantized input"),
    "bucket_without_ngrams": ("bucket", "<i", 0, "bucket is 0"),
    "bucket_not_rows": ("bucket", "<i", 5, "input matrix is 9 x 3, not 10 x 3"),
}
HOSTILE_FTZ = {
    "codesize_huge": ("input_codesize", "<i", 2**31 - 1, "codesize 2147483647 is not rows"),
    "codes_huge": ("input_rows", "<qqi", (2**31 - 1, 3, 2**31 - 1), "truncated"),
    "codesize_negative": ("input_codesize", "<i", -8, "bad quantized input"),
    "codesize_wrong": ("input_codesize", "<i", 13, "codesize 13 is not rows"),
    "codesize_too_wide": ("input_codesize", "<i", 28, "codesize 28 is not rows"),
    "pq_dim_huge": ("input_pq", "<i", 2**31 - 1, "bad input matrix quantizer"),
    "pq_dsub_zero": ("input_pq", "<iiii", (3, 2, 0, 1), "bad input matrix quantizer"),
    "pq_lastdsub_wrong": ("input_pq", "<iiii", (3, 2, 2, 2), "bad input matrix quantizer"),
    "pq_dim_not_cols": ("input_pq", "<iiii", (4, 2, 2, 2), "a quantizer of dim 4"),
    "norm_pq_wide": ("input_npq", "<iiii", (2, 1, 2, 2), "norm"),
    "output_qnorm_flag": ("output_qnorm", "<b", 3, "qnorm 3"),
    "bucket_below_pruned": ("bucket", "<i", 3, "pruned bucket"),
    "prune_bucket_out_of_range": ("pruneidx", "<i", 4, "pruned bucket"),
    "prune_row_out_of_range": ("pruneidx", "<ii", (1, 2), "pruned row offset"),
    "prune_bucket_twice": ("pruneidx", "<ii", (0, 1), "twice"),
}


@pytest.mark.parametrize("field", list(HOSTILE))
def test_hostile_header_fields(tiny_file, field):
    path, _, at = tiny_file
    fmt, value, words = HOSTILE[field]
    _rejects(_patched(path, at[field], fmt, value), words)


@pytest.mark.parametrize("case", list(HOSTILE_BIN) + list(HOSTILE_FTZ))
def test_hostile_fields_of_bin_and_ftz(tmp_path, case):
    quantized = case in HOSTILE_FTZ
    field, fmt, value, words = (HOSTILE_FTZ if quantized else HOSTILE_BIN)[case]
    ft = tiny(quantized)
    path = tmp_path / "tiny"
    write_fasttext(path, ft)
    at = layout(ft)
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, at[field], *(value if isinstance(value, tuple) else (value,)))
    path.write_bytes(bytes(data))
    _rejects(path, words)


def _duplicate_word(ft):
    ft.entries[1] = b"a"


def _negative_count(ft):
    ft.counts[2] = -3


def _bucket_zero_with_bigrams(ft):
    ft.args["bucket"] = 0
    ft.input_matrix = ft.input_matrix[:5]


@pytest.mark.parametrize("edit, words", [(_duplicate_word, "duplicate"), (_negative_count, "negative"),
                                         (_bucket_zero_with_bigrams, "bucket is 0")])
def test_inconsistent_models_are_rejected(tmp_path, monkeypatch, edit, words):
    """Files the writer refuses to make, written with its check switched off, then read."""
    ft = tiny()
    edit(ft)
    with monkeypatch.context() as patch:
        patch.setattr("fastembed.fasttext.writing.problem", lambda ft: None)
        write_fasttext(tmp_path / "bad.bin", ft)
    _rejects(tmp_path / "bad.bin", words)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 9, 10, 11, 17])
def test_dictionary_read_in_small_chunks(tiny_file, monkeypatch, chunk):
    """The dictionary is read in chunks: every entry, NUL and count may straddle a boundary."""
    path, ft, _ = tiny_file
    monkeypatch.setattr("fastembed.fasttext.reading._CHUNK", chunk)
    got = read_fasttext(path)
    assert got.entries == ft.entries
    np.testing.assert_array_equal(got.counts, ft.counts)
    np.testing.assert_array_equal(got.dense_input(), ft.dense_input())


def test_labels_before_words_are_rejected(tmp_path):
    path = tmp_path / "m.bin"
    write_fasttext(path, tiny())
    at = layout(tiny())
    _rejects(_patched(path, at["first_type"], "<b", 1), "words first")


def test_not_regular_files(tmp_path):
    fifo = tmp_path / "fifo.bin"
    os.mkfifo(fifo)  # nobody writes: opening it for reading must not block
    _rejects(fifo, "not a regular file")
    _rejects(tmp_path, "a directory")
    _rejects(tmp_path / "missing.bin", "no such model file")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    _rejects(empty, "too short")
    zipped = tmp_path / "model.fe"
    zipped.write_bytes(b"PK\x03\x04" + bytes(100))
    _rejects(zipped, "wrong magic")


def test_version_11_supervised_has_no_char_ngrams(tmp_path):
    ft = tiny()
    ft.args.update(maxn=5, minn=3)
    ft.version = 11
    path = tmp_path / "v11.bin"
    write_fasttext(path, ft)
    got = read_fasttext(path)
    assert got.version == 11 and got.args["maxn"] == 0 and got.args["minn"] == 3


@pytest.mark.parametrize("edit, words", [
    (lambda ft: ft.entries.__setitem__(1, b"th\0e"), "NUL"),
    (lambda ft: ft.entries.__setitem__(1, b"a"), "duplicate"),
    (lambda ft: setattr(ft, "types", ft.types[::-1].copy()), "words first"),
    (lambda ft: setattr(ft, "input_matrix", ft.input_matrix[:8]), "input matrix is 8 x 3"),
    (lambda ft: setattr(ft, "output_matrix", ft.output_matrix.astype(np.float64)), "float32"),
    (lambda ft: ft.args.update(loss="nce"), "unknown loss"),
    (lambda ft: ft.args.update(dim=2**40), "32-bit"),
    (lambda ft: ft.args.pop("t"), "exactly the keys"),
    (lambda ft: setattr(ft, "pruneidx_size", 0), "quantized input"),
    (lambda ft: setattr(ft, "output_matrix", quantize_matrix(ft.output_matrix)), "quantized output"),
    (lambda ft: setattr(ft, "counts", -ft.counts), "negative"),
])
def test_write_refuses_what_fasttext_cannot_load(tmp_path, edit, words):
    ft = tiny()
    edit(ft)
    with pytest.raises(ArgumentError, match=words):
        write_fasttext(tmp_path / "x.bin", ft)
    assert not (tmp_path / "x.bin").exists()


def test_write_refuses_small_codebooks(tmp_path):
    ft = tiny(quantized=True)
    q = ft.input_matrix
    ft.input_matrix = QuantizedMatrix(q.centroids[:3 * 16], q.codes % 16, 3, 2)
    with pytest.raises(ArgumentError, match="256"):
        write_fasttext(tmp_path / "x.ftz", ft)
