"""Out-of-core corpora (fastembed.text.out_of_core, corpus_cache): the same arrays as in memory,
the same model, a cache that is reused, detected stale, and validated as untrusted input."""

import gzip
import json
import os
import warnings
import weakref

import numpy as np
import pytest

import fastembed.text.out_of_core as ooc
from fastembed.errors import ArgumentError, CorpusError
from fastembed.model import train_supervised
from fastembed.text import build_corpus, line_limit
from fastembed.text.corpus_cache import CacheWarning, load_corpus
from fastembed.text.reader import read_line_chunks

from conftest import FIXTURES

SETTINGS = dict(label_prefix="__label__", min_count=2, min_count_label=1, word_ngrams=2,
                bucket=100_000, minn=2, maxn=4, min_count_ngram=2)


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces far smaller than the corpus, so every loop runs many times."""
    monkeypatch.setattr(ooc, "PIECE_BYTES", 20_000)
    monkeypatch.setattr(ooc, "ENCODE_TOKENS", 3_000)
    monkeypatch.setattr(ooc, "_PRUNE_ROWS", 5_000)


@pytest.fixture(scope="module")
def sst2_plain(tmp_path_factory):
    """A real corpus as plain text, its last line without a newline."""
    data = gzip.decompress((FIXTURES / "sst2_train_slice.txt.gz").read_bytes()).rstrip(b"\n")
    path = tmp_path_factory.mktemp("ooc") / "sst2.txt"
    path.write_bytes(data)
    return path


def _assert_same(d1, e1, d2, e2):
    for name in ooc.ARRAYS:
        np.testing.assert_array_equal(getattr(e1, name), getattr(e2, name), err_msg=name)
    assert e1.n_skipped == e2.n_skipped
    assert d1.words == d2.words and d1.labels == d2.labels
    np.testing.assert_array_equal(d1.word_counts, d2.word_counts)
    np.testing.assert_array_equal(d1.bucket_ids, d2.bucket_ids)
    assert d1.ntokens == d2.ntokens


@pytest.mark.parametrize("corpus", ["gzip", "plain"])
def test_streamed_encoding_equals_in_memory(corpus, sst2_plain, small_pieces):
    path = FIXTURES / "trec6_train_slice.txt.gz" if corpus == "gzip" else sst2_plain
    _assert_same(*build_corpus(path, **SETTINGS), *load_corpus(path, **SETTINGS))


def test_skipped_lines_are_counted_and_warned(tmp_path, small_pieces):
    path = tmp_path / "c.txt"
    lines = gzip.decompress((FIXTURES / "sms_spam_train_slice.txt.gz").read_bytes()).splitlines(True)
    path.write_bytes(b"".join(line if i % 7 else b"no label here\n" for i, line in enumerate(lines)))
    with pytest.warns(UserWarning, match="skipped"):
        ref = build_corpus(path, **SETTINGS)
    with pytest.warns(UserWarning, match="skipped"):
        got = load_corpus(path, **SETTINGS)
    assert got[1].n_skipped == ref[1].n_skipped > 0
    _assert_same(*ref, *got)


def test_line_chunks_end_at_newlines_and_cover_the_file(sst2_plain):
    pieces = list(read_line_chunks(FIXTURES / "sst2_train_slice.txt.gz", chunk_bytes=1000))
    assert len(pieces) > 10
    assert all(p.size and p[-1] == 10 for p in pieces[:-1])
    whole = gzip.decompress((FIXTURES / "sst2_train_slice.txt.gz").read_bytes())
    assert b"".join(p.tobytes() for p in pieces) == whole
    with line_limit(50), pytest.raises(CorpusError, match="longer than 50 bytes"):
        list(read_line_chunks(sst2_plain, chunk_bytes=1000))


def test_out_of_core_training_equals_in_memory(sst2_plain, small_pieces, monkeypatch):
    """One thread, same seed: the same corpus arrays give bit-identical tables (tf-idf weights too)."""
    monkeypatch.setattr(ooc, "SHUFFLE_ROWS", 1 << 40)  # one block: the in-memory order
    _same_tables_under(monkeypatch, sst2_plain, dict(epoch=2, threads=1, dim=16, verbose=0, seed=3),
                       {"OUT_OF_CORE_MIN_BYTES": 1 << 62}, {"OUT_OF_CORE_MIN_BYTES": 0})


def _same_tables_under(monkeypatch, corpus, kw, first, second):
    """Trains on ``corpus`` with the out_of_core settings ``first``, then ``second``; asserts
    bit-identical tables and returns the two models."""
    models = []
    for settings in (first, second):
        for name, value in settings.items():
            monkeypatch.setattr(ooc, name, value)
        models.append(train_supervised(corpus, **kw))
    np.testing.assert_array_equal(models[0].input_matrix, models[1].input_matrix)
    np.testing.assert_array_equal(models[0].output_matrix, models[1].output_matrix)
    return models


def test_cache_is_reused_then_found_stale(tmp_path, sst2_plain, small_pieces, monkeypatch):
    path = tmp_path / "c.txt"
    path.write_bytes(sst2_plain.read_bytes())
    cache = tmp_path / "cache"
    first = load_corpus(path, cache_dir=cache, **SETTINGS)
    _assert_same(*build_corpus(path, **SETTINGS), *first)
    (entry,) = [p for p in cache.iterdir()]
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no work dir left

    def fail(*a, **k):
        raise AssertionError("encoded again")
    monkeypatch.setattr("fastembed.text.corpus_cache.encode_to_files", fail)
    _assert_same(*first, *load_corpus(path, cache_dir=cache, **SETTINGS))
    monkeypatch.undo()

    # other settings: another entry; a changed file: the same entry, rebuilt
    load_corpus(path, cache_dir=cache, **dict(SETTINGS, word_ngrams=3))
    assert len(list(cache.iterdir())) == 2
    path.write_bytes(b"".join(sst2_plain.read_bytes().splitlines(True)[:300]))
    got = load_corpus(path, cache_dir=cache, **SETTINGS)
    _assert_same(*build_corpus(path, **SETTINGS), *got)
    assert len(list(cache.iterdir())) == 2


def _corrupt_int32(entry, name, value):
    a = np.fromfile(entry / name, np.int32)
    a[len(a) // 2] = value
    a.tofile(entry / name)


@pytest.mark.parametrize("damage", ["row out of range", "label out of range", "negative tokens",
                                    "offsets decrease", "truncated", "meta counts", "dictionary",
                                    "meta not json"])
def test_corrupt_cache_is_detected_and_rebuilt(damage, tmp_path, sst2_plain):
    cache = tmp_path / "cache"
    load_corpus(sst2_plain, cache_dir=cache, **SETTINGS)
    ref = build_corpus(sst2_plain, **SETTINGS)  # not the mapped entry: the damage shows through
    (entry,) = list(cache.iterdir())
    meta = json.loads((entry / "meta.json").read_text())
    if damage == "row out of range":
        _corrupt_int32(entry, "indices", meta["n_rows"])
    elif damage == "label out of range":
        _corrupt_int32(entry, "label_indices", -1)
    elif damage == "negative tokens":
        _corrupt_int32(entry, "ntokens", -5)
    elif damage == "offsets decrease":
        a = np.fromfile(entry / "offsets", np.int64)
        a[3] = a[5] + 1
        a.tofile(entry / "offsets")
    elif damage == "truncated":
        os.truncate(entry / "indices", os.path.getsize(entry / "indices") - 4)
    elif damage == "meta counts":
        meta["counts"]["indices"] = -1
        (entry / "meta.json").write_text(json.dumps(meta))
    elif damage == "dictionary":
        (entry / "dictionary.npz").write_bytes(b"PK\x03\x04 not a zip")
    else:
        (entry / "meta.json").write_text("{not json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = load_corpus(sst2_plain, cache_dir=cache, **SETTINGS)
    if damage != "meta not json":  # unreadable meta: no entry at all, rebuilt silently
        assert any(issubclass(w.category, CacheWarning) for w in caught)
    _assert_same(*ref, *got)
    _assert_same(*ref, *load_corpus(sst2_plain, cache_dir=cache, **SETTINGS))  # repaired


def test_cache_dir_needs_a_file():
    with pytest.raises(ArgumentError, match="cache_dir"):
        train_supervised(["__label__a x y"], cache_dir="/tmp/whatever", verbose=0)


def test_the_switch_over_counts_a_gzip_corpus_by_its_text(tmp_path, sst2_plain, monkeypatch):
    """A .gz corpus goes out of core by the size of its text, not of its compressed file."""
    text = sst2_plain.read_bytes()
    packed = tmp_path / "c.txt.gz"
    packed.write_bytes(gzip.compress(text))
    assert packed.stat().st_size < len(text) // 2
    monkeypatch.setattr(ooc, "OUT_OF_CORE_MIN_BYTES", len(text))
    assert ooc.use_out_of_core(packed, None) and ooc.use_out_of_core(sst2_plain, None)
    monkeypatch.setattr(ooc, "OUT_OF_CORE_MIN_BYTES", len(text) + 1)
    assert not ooc.use_out_of_core(packed, None) and not ooc.use_out_of_core(sst2_plain, None)
    assert not ooc.use_out_of_core([b"__label__a x"], None)


def test_release_pages_keeps_the_data(sst2_plain):
    _, corpus = load_corpus(sst2_plain, **SETTINGS)
    before = corpus.indices.copy()
    corpus.release_pages()
    np.testing.assert_array_equal(corpus.indices, before)


def test_cli_cache_dir(tmp_path, trec_train):
    from click.testing import CliRunner

    from fastembed.cli import main
    cache = tmp_path / "cache"
    for _ in range(2):
        r = CliRunner().invoke(main, ["train", str(trec_train), "-o", str(tmp_path / "m.fe"), "-q",
                                      "--epoch", "1", "--threads", "1", "--cache-dir", str(cache)])
        assert r.exit_code == 0, r.output
    assert len(list(cache.iterdir())) == 1


def test_block_order_is_a_permutation_of_whole_blocks(sst2_plain, monkeypatch):
    monkeypatch.setattr(ooc, "SHUFFLE_ROWS", 5_000)
    _, corpus = load_corpus(sst2_plain, **SETTINGS)
    order = corpus.shuffled_order(np.random.default_rng(0))
    n = corpus.n_lines
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    # cut the order where it leaves a block: each run is a whole range of lines of ~5,000 rows
    starts = np.searchsorted(corpus.offsets, np.arange(0, corpus.offsets[-1], 5_000), side="right") - 1
    bounds = np.unique(np.concatenate([[0], starts, [n]]))
    block_of = np.searchsorted(bounds, order, side="right") - 1
    changes = np.flatnonzero(np.diff(block_of)) + 1
    assert len(changes) == len(bounds) - 2  # every block visited in one run
    runs = np.split(order, changes)
    for run in runs:
        np.testing.assert_array_equal(np.sort(run), np.arange(run.min(), run.max() + 1))
    assert not np.array_equal(order, np.arange(n))


def test_order_pieces_are_whole_blocks_of_the_one_order(sst2_plain, monkeypatch):
    """The pieces an epoch is trained in: at least ``segment_lines`` lines each but the last,
    whole blocks, and together the order a single piece gives (the same draws)."""
    monkeypatch.setattr(ooc, "SHUFFLE_ROWS", 500)
    _, corpus = load_corpus(sst2_plain, **SETTINGS)
    whole = corpus.shuffled_order(np.random.default_rng(4))
    [one] = list(corpus.shuffled_segments(np.random.default_rng(4), segment_lines=corpus.n_lines))
    np.testing.assert_array_equal(one, whole)
    pieces = list(corpus.shuffled_segments(np.random.default_rng(4), segment_lines=corpus.n_lines // 5))
    assert len(pieces) > 2 and all(p.size >= corpus.n_lines // 5 for p in pieces[:-1]) and pieces[-1].size > 0
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    starts = np.searchsorted(corpus.offsets, np.arange(0, corpus.offsets[-1], 500), side="right") - 1
    bounds = np.unique(np.concatenate([[0], starts, [corpus.n_lines]]))
    for piece in pieces:  # a piece ends where a block ends
        block_of = np.searchsorted(bounds, piece, side="right") - 1
        for b in np.unique(block_of):
            assert np.count_nonzero(block_of == b) == bounds[b + 1] - bounds[b]


def test_training_in_pieces_equals_training_on_the_whole_order(sst2_plain, monkeypatch):
    """Threads=1: an epoch trained piece by piece is the run on the whole order, bit for bit."""
    monkeypatch.setattr(ooc, "SHUFFLE_ROWS", 500)
    monkeypatch.setattr(ooc, "OUT_OF_CORE_MIN_BYTES", 0)
    whole, pieces = _same_tables_under(monkeypatch, sst2_plain, dict(epoch=2, threads=1, dim=16, verbose=0, seed=5),
                                       {"SEGMENT_LINES": 1 << 40}, {"SEGMENT_LINES": 200})
    assert pieces.train_stats["tokens"] == whole.train_stats["tokens"]


def test_training_order_is_by_blocks(sst2_plain, monkeypatch):
    """Threads=1: the out-of-core run trains in the corpus's block order and still learns."""
    monkeypatch.setattr(ooc, "SHUFFLE_ROWS", 5_000)
    monkeypatch.setattr(ooc, "OUT_OF_CORE_MIN_BYTES", 0)
    model = train_supervised(sst2_plain, epoch=3, threads=1, dim=16, verbose=0, seed=3)
    n, p, _ = model.test(FIXTURES / "sst2_train_slice.txt.gz")
    assert p > 0.8


@pytest.mark.parametrize("pooling", ["tfidf", "mean"])
def test_an_interrupted_out_of_core_run_resumes_bit_for_bit(sst2_plain, small_pieces, monkeypatch,
                                                            tmp_path, pooling):
    """Threads=1, an order of many blocks: interrupted after epoch 1 of 3 and resumed, the
    uninterrupted run's model; the resumed run trains out of core too (its corpus maps files)."""
    from test_continuation import _interrupted, _same_model

    from fastembed.model import training

    monkeypatch.setattr(ooc, "SHUFFLE_ROWS", 5_000)
    monkeypatch.setattr(ooc, "OUT_OF_CORE_MIN_BYTES", 0)
    kw = {"epoch": 3, "threads": 1, "dim": 16, "verbose": 0, "seed": 3, "optimizer": "adagrad", "pooling": pooling}
    uninterrupted = train_supervised(sst2_plain, **kw)
    with monkeypatch.context() as patch:
        _interrupted(patch, after=1)
        with pytest.raises(KeyboardInterrupt):
            train_supervised(sst2_plain, checkpoint=tmp_path / "c.ckpt", **kw)
    corpora = []
    train_on_corpus = training.train_on_corpus
    monkeypatch.setattr(training, "train_on_corpus",
                        lambda args, d, corpus, **k: corpora.append(corpus) or train_on_corpus(args, d, corpus, **k))
    resumed = train_supervised(sst2_plain, resume=tmp_path / "c.ckpt", verbose=0)
    assert isinstance(corpora[0], ooc.MappedCorpus)
    _same_model(resumed, uninterrupted)
    if pooling == "mean":  # a resumed out-of-core run may keep its encoding in a cache too
        cached = train_supervised(sst2_plain, resume=tmp_path / "c.ckpt", verbose=0, cache_dir=tmp_path / "cache")
        _same_model(cached, uninterrupted)
        assert len(list((tmp_path / "cache").iterdir())) == 1
        with pytest.raises(ArgumentError, match="give that file"):
            train_supervised(sst2_plain.read_text().splitlines(), resume=tmp_path / "c.ckpt", verbose=0)
        monkeypatch.setattr(ooc, "OUT_OF_CORE_MIN_BYTES", 1 << 62)  # an in-memory run's checkpoint
        train_supervised(sst2_plain, checkpoint=tmp_path / "m.ckpt", **dict(kw, epoch=1))
        with pytest.raises(ArgumentError, match="encoded its corpus in memory"):
            train_supervised(sst2_plain, resume=tmp_path / "m.ckpt", verbose=0, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("lines", ["one label each", "some with two"])
def test_document_frequency_and_idf_equal_in_memory_and_mapped(tmp_path, sst2_plain, small_pieces, lines):
    """corpus_weights's df (taken from the label counts when every line has one label) equals
    document_frequency over the bags, in memory and mapped; the idf and weights are equal too."""
    from fastembed.model.corpus_weights import corpus_weights
    from fastembed.model.pooling import document_frequency
    from fastembed.settings import TrainArgs

    path = sst2_plain
    if lines == "some with two":
        path = tmp_path / "two.txt"
        raw = sst2_plain.read_bytes().splitlines(True)
        path.write_bytes(b"".join(b"__label__extra " + r if i % 5 == 0 else r for i, r in enumerate(raw)))
    args = TrainArgs.from_preset("fastembed", dim=8)
    assert args.pooling == "tfidf" and args.label_weighting > 0
    results = []
    for d, corpus in (build_corpus(path, **SETTINGS), load_corpus(path, **SETTINGS)):
        assert (corpus.label_indices.size == corpus.n_lines) == (lines == "one label each")
        idf, weights, df = corpus_weights(args, corpus, d.n_rows, d.nlabels)
        expected = document_frequency(np.array(corpus.indices), np.array(corpus.offsets), d.n_rows)
        np.testing.assert_array_equal(df, expected)
        assert df.dtype == np.int64
        results.append((idf, np.array(weights)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


# -- deterministic mode, piece by piece; page release by volume ---------------------------------

@pytest.fixture
def multi_label_file(trec_train, tmp_path):
    """1,000 TREC-6 lines, every third with a second label: softmax draws one of them by the line's
    position in the epoch (deterministic mode's counter-based stream)."""
    lines = trec_train.read_bytes().splitlines(True)[:1000]
    path = tmp_path / "multi.txt"
    path.write_bytes(b"".join(b"__label__extra " + line if i % 3 == 0 else line for i, line in enumerate(lines)))
    return path


@pytest.fixture
def many_pieces(monkeypatch):
    """Out of core, epochs in pieces of ~150 lines (blocks of a few lines): deterministic mode's
    batches of 128 fall within a piece or span two. Returns the pieces each epoch came in."""
    monkeypatch.setattr(ooc, "OUT_OF_CORE_MIN_BYTES", 0)
    monkeypatch.setattr(ooc, "SHUFFLE_ROWS", 300)
    monkeypatch.setattr(ooc, "SEGMENT_LINES", 150)
    counts = []
    segments = ooc.MappedCorpus.shuffled_segments

    def counted(self, rng, segment_lines=None):
        counts.append(0)
        previous = None
        for piece in segments(self, rng, segment_lines):
            # the trainer holds one piece at a time: the order is never in memory whole
            assert previous is None or previous() is None, "the last piece is still held"
            counts[-1] += 1
            previous = weakref.ref(piece)
            yield piece
            del piece
    monkeypatch.setattr(ooc.MappedCorpus, "shuffled_segments", counted)
    return counts


DETERMINISTIC = dict(epoch=2, dim=8, verbose=0, seed=3, deterministic=True, loss="softmax")


def test_deterministic_training_in_pieces_is_that_of_the_whole_order(multi_label_file, many_pieces,
                                                                     monkeypatch):
    """deterministic=True out of core, the order in many pieces: for 1 and 2 threads, the model of
    the order in one piece, bit for bit (the batches and the draws' positions are the whole
    order's: numbered from each piece's start, the multi-label draws would differ)."""
    from test_continuation import _same_model

    pieces = [train_supervised(multi_label_file, threads=t, **DETERMINISTIC) for t in (1, 2)]
    assert len(many_pieces) == 4 and min(many_pieces) > 5  # 2 epochs each, many pieces
    train_supervised(multi_label_file, **dict(DETERMINISTIC, deterministic=False, threads=2))  # hogwild too
    monkeypatch.setattr(ooc, "SEGMENT_LINES", 1 << 40)
    whole = train_supervised(multi_label_file, threads=1, **DETERMINISTIC)
    assert many_pieces[-1] == 1
    for model in pieces:
        _same_model(model, whole)


def test_an_interrupted_deterministic_out_of_core_run_resumes_bit_for_bit(multi_label_file, many_pieces,
                                                                         monkeypatch, tmp_path):
    """Interrupted after epoch 1 of 3 (2 threads) and resumed on 1 thread: the uninterrupted run."""
    from test_continuation import _interrupted, _same_model

    kw = dict(DETERMINISTIC, epoch=3, optimizer="adagrad")
    uninterrupted = train_supervised(multi_label_file, threads=2, **kw)
    with monkeypatch.context() as patch:
        _interrupted(patch, after=1)
        with pytest.raises(KeyboardInterrupt):
            train_supervised(multi_label_file, threads=2, checkpoint=tmp_path / "c.ckpt", **kw)
    resumed = train_supervised(multi_label_file, resume=tmp_path / "c.ckpt", threads=1, verbose=0)
    _same_model(resumed, uninterrupted)


def test_the_callback_stops_a_deterministic_out_of_core_run_between_pieces(multi_label_file, many_pieces,
                                                                          monkeypatch):
    from fastembed.model import progress

    monkeypatch.setattr(progress, "CALLBACK_INTERVAL", 0.0)  # a report at every poll
    calls = []

    def stop_at_once(report):
        calls.append(report)
        return False
    model = train_supervised(multi_label_file, threads=2, callback=stop_at_once, **DETERMINISTIC)
    assert model.train_stats["stopped_by"] == "callback"
    assert model.train_stats["epochs_trained"] == 0 and len(calls) == 1
    assert 0 < calls[0]["progress"] < 0.5 * 0.5  # a few batches of epoch 1


def test_pages_are_released_by_the_volume_read(sst2_plain, monkeypatch):
    """lines_read releases the pages once the lines read since the last release hold RELEASE_BYTES
    of the mapped files (on average), whatever the time between the calls."""
    _, corpus = load_corpus(sst2_plain, **SETTINGS)
    per_line = sum(len(m) for m in corpus.maps) / corpus.n_lines
    monkeypatch.setattr(ooc, "RELEASE_BYTES", int(10 * per_line) + 1)
    assert corpus.release_lines() == 10
    released = []
    corpus.release_pages = lambda: released.append(True)
    for n in (4, 4, 1):
        corpus.lines_read(n)
    assert not released
    corpus.lines_read(1)
    assert len(released) == 1
    corpus.lines_read(25)
    corpus.lines_read(9)
    assert len(released) == 2


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_total_tokens_is_the_sum_of_ntokens(sst2_plain, monkeypatch, chunk):
    import fastembed.text.encoded as encoded

    monkeypatch.setattr(encoded, "PER_LINE_CHUNK", chunk)
    for _, corpus in (build_corpus(sst2_plain, **SETTINGS), load_corpus(sst2_plain, **SETTINGS)):
        assert corpus.total_tokens() == int(np.asarray(corpus.ntokens).sum()) > 0
