"""The n-gram row map held by the dictionary: validation, memory bounded by the used buckets.

Its numbering (first appearance, min_count_ngram) is checked against the plain-Python reference
in test_text_reference.py; here: what a dictionary accepts, and that nothing grows with
``bucket`` (up to 2**31 - 1 in a model file).
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastembed
from fastembed.errors import ModelFileError
from fastembed.text import Dictionary, build_corpus
from fastembed.text.ngram_rows import (
    RowNumbering,
    assign_rows,
    build_row_table,
    find_bucket,
)

CORPUS = [
    "__label__a the cat sat on the mat",
    "__label__b the dog ate the cat food",
    "__label__a a cat and a dog",
]


def dictionary_arrays(**kw):
    d, _ = build_corpus(CORPUS, **kw)
    return d, d.to_arrays()


@pytest.mark.parametrize("bad,match", [
    (np.array([3, 5, 3], np.int32), "twice"),
    (np.array([-1], np.int32), "outside"),
    (np.array([1000], np.int64), "outside"),
    (np.array([[1, 2]], np.int32), "1-D"),
    (np.array([1.0, 2.0]), "integer"),
])
def test_bad_bucket_ids_are_refused(bad, match):
    _, arrays = dictionary_arrays(word_ngrams=2, bucket=1000)
    arrays["bucket_ids"] = bad
    with pytest.raises(ValueError, match=match):
        Dictionary.from_arrays(arrays)


def test_rows_of_a_loaded_dictionary():
    d, arrays = dictionary_arrays(word_ngrams=2, bucket=2_000_000, min_count_ngram=2)  # no collision
    # "the cat" is the only bigram used twice; every other bucket reads the zero row
    assert d.bucket_ids.size == 1 and d.n_rows == d.nwords + 2 and d.unseen_row == d.nwords + 1
    again = Dictionary.from_arrays(arrays)
    enc = again.encode(["the cat", "the cow"], keep_unlabelled=True)
    w = again.get_word_id
    eos = w("</s>")
    assert enc.bag(0).tolist() == [w("the"), w("cat"), eos, d.nwords, d.unseen_row]
    assert enc.bag(1).tolist() == [w("the"), eos, d.unseen_row, d.unseen_row]


def test_a_model_file_with_a_duplicated_bucket_is_refused(tmp_path):
    m = fastembed.train_supervised(CORPUS * 3, dim=4, epoch=1, threads=1, verbose=0, min_count_ngram=1)
    assert m.bucket_ids.size >= 2
    path = tmp_path / "m.fe"
    m.save(path)
    with np.load(path, allow_pickle=False) as z:
        members = {name: z[name] for name in z.files}
    members["bucket_ids"] = members["bucket_ids"].copy()
    members["bucket_ids"][1] = members["bucket_ids"][0]
    with open(tmp_path / "bad.fe", "wb") as f:
        np.savez(f, **members)
    with pytest.raises(ModelFileError, match="twice"):
        fastembed.load_model(tmp_path / "bad.fe")


def test_assign_rows_numbers_by_first_appearance_and_counts():
    nwords = 10
    indices = np.array([3, 10 + 500, 4, 10 + 7, 10 + 500, 10 + 99, 10 + 7, 10 + 500], np.int32)
    bucket_ids, counts = assign_rows(indices, nwords)
    assert bucket_ids.tolist() == [500, 7, 99] and counts.tolist() == [3, 2, 1]
    assert indices.tolist() == [3, 10, 4, 11, 10, 12, 11, 10]


def test_the_table_grows_with_the_used_buckets_only():
    rng = np.random.default_rng(0)
    ids = rng.choice(2**31 - 2, size=5000, replace=False).astype(np.int32)
    keys, bits, status = build_row_table(ids, 2**31 - 1)
    assert status == 0 and keys.size == 2**bits <= 4 * ids.size
    for j in (0, 1234, 4999):
        assert find_bucket(keys, bits, int(ids[j])) == j
    assert find_bucket(keys, bits, int(np.setdiff1d(np.arange(6000), ids)[0])) < 0


_HUGE = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from fastembed.model.classifier import Model
    from fastembed.settings import TrainArgs
    from fastembed.text import build_corpus
    corpus = ["__label__a the cat sat on the mat", "__label__b the dog ate the cat food"] * 50

    def run(bucket):
        d, enc = build_corpus(corpus, word_ngrams=3, minn=2, maxn=4, bucket=bucket)
        args = TrainArgs.from_preset("fasttext", dim=8, word_ngrams=3, minn=2, maxn=4, bucket=bucket)
        model = Model(args, d, np.ones((d.n_rows, 8), np.float32), np.ones((d.nlabels, 8), np.float32))
        model.predict("the cat ate a zebra")
        model.predict(["the dog", "a cow"] * 100)
        d.encode(["the mat"] * 100, keep_unlabelled=True)
        return int(enc.indices.max()), d.n_rows

    run(1000)  # kernels loaded (or compiled) before measuring
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    max_row, n_rows = run(2**31 - 1 - 100)  # fastText's limit, minus room for the words
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(grown, max_row, n_rows)
    """
)


def test_a_bucket_of_two_billion_allocates_nothing_of_its_size():
    """A bucket-sized int32 map would be 8 GB: the peak memory must not grow by even 100 MB."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", _HUGE], check=True, capture_output=True, text=True,
                         timeout=600, env=env).stdout.split()
    grown_kb, max_row, n_rows = map(int, out)
    assert max_row < n_rows < 1000
    assert grown_kb < 100_000, f"peak RSS grew by {grown_kb} kB"


@pytest.mark.parametrize("pieces", [1, 3])
def test_the_direct_map_numbers_as_the_key_table(pieces):
    """The direct map (bucket <= DIRECT_MAX_BUCKET) against the key table, the reference: the
    same rows, bucket ids and counts, fed whole or in pieces."""
    rng = np.random.default_rng(1)
    nwords, bucket = 50, 3000
    zipf = np.minimum(rng.zipf(1.3, size=20_000), bucket) - 1  # repeats, as n-grams repeat
    rows = np.where(rng.random(20_000) < 0.3, rng.integers(0, nwords, 20_000), nwords + zipf)
    ref = rows.astype(np.int32)
    ref_ids, ref_counts = assign_rows(ref, nwords)  # no bucket: the key table
    direct = rows.astype(np.int32)
    numbering = RowNumbering(nwords, bucket)
    assert numbering.slots is not None
    for part in np.array_split(np.arange(direct.size), pieces):
        piece = direct[part]
        numbering.feed(piece)
        direct[part] = piece
    ids, counts = numbering.result()
    assert np.array_equal(direct, ref) and np.array_equal(ids, ref_ids) and np.array_equal(counts, ref_counts)
    assert ids.dtype == ref_ids.dtype and counts.dtype == ref_counts.dtype


def test_the_direct_map_refuses_a_row_beyond_the_bucket():
    numbering = RowNumbering(10, 20)
    with pytest.raises(ValueError, match="beyond"):
        numbering.feed(np.array([3, 10 + 7, 10 + 20], np.int32))


def test_a_corpus_small_against_the_bucket_is_numbered_through_the_key_table():
    """Filling a direct map costs its whole size: below bucket / 4 bag rows, the key table."""
    assert RowNumbering(10, 4000, expected_rows=999).slots is None
    assert RowNumbering(10, 4000, expected_rows=1000).slots is not None
    rows = np.array([3, 10 + 7, 10 + 2, 10 + 7], np.int32)
    ids, counts = assign_rows(rows, 10, bucket=4000)
    assert rows.tolist() == [3, 10, 11, 10] and ids.tolist() == [7, 2] and counts.tolist() == [2, 1]


def test_the_key_table_grows_between_kernel_calls():
    """Fed in pieces with no expected size, the key table and the bucket list start small and
    grow between the kernel's calls; the numbering is the presized table's."""
    rng = np.random.default_rng(2)
    nwords = 30
    rows = np.where(rng.random(30_000) < 0.2, rng.integers(0, nwords, 30_000),
                    nwords + rng.integers(0, 50_000, 30_000)).astype(np.int32)
    ref = rows.copy()
    ref_ids, ref_counts = assign_rows(ref, nwords)  # presized: no growth
    numbering = RowNumbering(nwords)
    assert numbering.state[0].size == 16
    for part in np.array_split(np.arange(rows.size), 7):
        piece = rows[part]
        numbering.feed(piece)
        rows[part] = piece
    ids, counts = numbering.result()
    assert numbering.state[0].size >= 2 * ids.size + 2
    assert np.array_equal(rows, ref) and np.array_equal(ids, ref_ids) and np.array_equal(counts, ref_counts)
