"""fastembed.dask on a LocalCluster of 2 worker processes: predictions equal in-process ones, the
distributed dictionary equals the single-process one, the model is within a point of it, and a
worker killed mid-training is retried (same model) or ends in a clear error."""

import os
import re

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
db = pytest.importorskip("dask.bag")
distributed = pytest.importorskip("distributed")

import fastembed.dask as fd  # noqa: E402
from fastembed.errors import ArgumentError  # noqa: E402
from fastembed.model import train_supervised  # noqa: E402

from conftest import DATA  # noqa: E402

TRAIN, TEST = DATA / "trec6.train.txt", DATA / "trec6.test.txt"
SETTINGS = dict(epoch=5, seed=1, dim=30)


def frame(path):
    """A fastText-format file as a DataFrame of text and (space-separated) labels."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        tokens = line.split()
        rows.append((" ".join(t for t in tokens if not t.startswith("__label__")),
                     " ".join(t for t in tokens if t.startswith("__label__"))))
    return pd.DataFrame(rows, columns=["text", "label"])


def cluster(**config):
    with dask.config.set(config):
        return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                        dashboard_address=":0")


# -- small runs, quick without the JIT (first in the file: before the process cluster below
#    becomes the default client) ------------------------------------------------------------------

SMALL = dict(epoch=2, dim=5, seed=0, min_count_ngram=2)


def small_frame():
    return frame(TRAIN).iloc[:200]


def assert_predict_is_in_process_predict(model, texts, npartitions):
    """fastembed.dask.predict on a Series and on a Bag equals Model.predict, label for label and
    float for float."""
    ref = model.predict(texts, k=2)
    series = pd.Series(texts, index=np.arange(len(texts)) * 3)  # an index of its own, kept
    got = fd.predict(model, dd.from_pandas(series, npartitions=npartitions), k=2).compute()
    assert list(got.index) == list(series.index)
    bag = fd.predict(model, db.from_sequence(texts, npartitions=npartitions), k=2).compute()
    for (labels, probs), (b_labels, b_probs), (ref_labels, ref_probs) in zip(got.tolist(), bag, ref):
        assert labels == b_labels == ref_labels
        np.testing.assert_array_equal(probs, ref_probs)
        np.testing.assert_array_equal(b_probs, ref_probs)


@pytest.mark.parametrize("pooling", ["mean", "tfidf"])
def test_without_a_cluster_the_threaded_scheduler_trains_and_predicts(pooling, capsys):
    """No distributed client: every task runs on dask's local threads (in this process, so the
    coverage run measures them). Dictionary, bucket rows and idf are the single-process ones."""
    df = small_frame()
    lines = TRAIN.read_text(encoding="utf-8").splitlines()[:200]
    single = train_supervised(lines, verbose=0, threads=1, pooling=pooling, **SMALL)
    got = fd.train_supervised(dd.from_pandas(df, npartitions=3), n_groups=2, verbose=1, pooling=pooling,
                              **SMALL)
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert [re.fullmatch(r"epoch (\d)/2: loss (\d+\.\d{4}) \(2 groups\)", line).group(1) for line in progress] \
        == ["1", "2"]
    assert float(progress[-1].split()[3]) == pytest.approx(got.train_stats["final_loss"], abs=5e-5)
    assert got.dictionary.words == single.dictionary.words and got.labels == single.labels
    np.testing.assert_array_equal(got.dictionary.word_counts, single.dictionary.word_counts)
    np.testing.assert_array_equal(got.dictionary.bucket_ids, single.dictionary.bucket_ids)
    if pooling == "tfidf":
        np.testing.assert_allclose(got.idf, single.idf, rtol=1e-6)
    else:
        assert got.idf is None
    assert got.input_matrix.shape == single.input_matrix.shape
    assert got.output_matrix.shape == single.output_matrix.shape
    assert got.train_stats["groups"] == 2 and got.train_stats["examples"] == 200
    assert got.args.threads == 1  # no client: one thread per group
    assert_predict_is_in_process_predict(got, df["text"].tolist()[:30], npartitions=4)


def test_an_in_process_cluster_trains_what_the_threaded_scheduler_trains():
    """The same groups, seeds and averaging on 2 workers of a cluster in this process as on the
    local threads: the same tables, bit for bit. Predictions through the scattered model file,
    loaded once per process, equal in-process ones."""
    df = small_frame()
    local = fd.train_supervised(dd.from_pandas(df, npartitions=4), n_groups=2, verbose=0, **SMALL)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as c, distributed.Client(c):
        got = fd.train_supervised(dd.from_pandas(df, npartitions=4), verbose=0, **SMALL)
        assert got.train_stats["groups"] == 2  # one group per worker
        np.testing.assert_array_equal(got.input_matrix, local.input_matrix)
        np.testing.assert_array_equal(got.output_matrix, local.output_matrix)
        before = fd._loads
        assert_predict_is_in_process_predict(got, df["text"].tolist()[:30], npartitions=3)
        assert fd._loads == before + 1  # one process: loaded once for both collections' tasks


def test_predicting_with_one_model_again_and_again_never_loses_its_bytes():
    """Each call scatters the model under a key of its own. With a key hashed from the bytes,
    the next call reused the key that the dropped collection of the last one was releasing:
    4 of 60 calls failed with "lost dependencies" on this machine."""
    model = train_supervised(b"__label__a x y\n__label__b z w\n", verbose=0, threads=1, epoch=1)
    texts = ["x y", "z w"] * 5
    expected = model.predict(texts, k=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as c, distributed.Client(c):
        for _ in range(40):
            got = fd.predict(model, db.from_sequence(texts, npartitions=3), k=1).compute()
            assert [labels for labels, _ in got] == [labels for labels, _ in expected]


@pytest.fixture(scope="module")
def client():
    with cluster() as c, distributed.Client(c) as cl:
        yield cl


@pytest.fixture(scope="module")
def single():
    return train_supervised(TRAIN, threads=1, verbose=0, **SETTINGS)


@pytest.fixture(scope="module")
def distributed_model(client):
    return fd.train_supervised(dd.from_pandas(frame(TRAIN), npartitions=4), verbose=0, **SETTINGS)


@pytest.mark.slow_without_jit  # trains on all of TREC-6
def test_predict_equals_in_process_and_loads_once_per_worker(client, single):
    texts = frame(TEST)["text"]
    ref = single.predict(texts.tolist(), k=2, threshold=0.01)
    got = fd.predict(single, dd.from_pandas(texts, npartitions=7), k=2, threshold=0.01).compute()
    assert list(got.index) == list(texts.index)
    for (labels, probs), (ref_labels, ref_probs) in zip(got.tolist(), ref):
        assert labels == ref_labels
        np.testing.assert_array_equal(probs, ref_probs)
    bag = fd.predict(single, db.from_sequence(texts.tolist(), npartitions=9), k=1).compute()
    assert [labels for labels, _ in bag] == [labels for labels, _ in single.predict(texts.tolist())]
    loads = client.run(lambda: __import__("fastembed.dask").dask._loads)
    assert all(n <= 1 for n in loads.values()) and sum(loads.values()) >= 1


@pytest.mark.slow_without_jit  # trains on all of TREC-6
def test_distributed_dictionary_is_the_single_process_one(distributed_model, single):
    a, b = distributed_model.dictionary, single.dictionary
    assert a.words == b.words and a.labels == b.labels
    np.testing.assert_array_equal(a.word_counts, b.word_counts)
    np.testing.assert_array_equal(a.bucket_ids, b.bucket_ids)
    np.testing.assert_allclose(distributed_model.idf, single.idf, rtol=1e-6)


@pytest.mark.slow_without_jit  # trains on all of TREC-6
def test_distributed_model_within_a_point_of_single_process(distributed_model, single):
    _, p_single, _ = single.test(TEST)
    _, p_dist, _ = distributed_model.test(TEST)
    assert p_single > 0.85  # it learnt something
    assert p_dist >= p_single - 0.01, (p_dist, p_single)


class KillOnce(distributed.WorkerPlugin):
    """Kills the worker process that starts the ``nth`` training task of the cluster (once)."""

    def __init__(self, marker_dir, nth=3):
        self.marker_dir, self.nth = str(marker_dir), nth

    def transition(self, key, start, finish, **kwargs):
        name = key[0] if isinstance(key, tuple) else key
        if finish != "executing" or not str(name).startswith("_train_group"):
            return
        for i in range(self.nth):
            try:
                os.close(os.open(os.path.join(self.marker_dir, f"started-{i}"), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            if i == self.nth - 1:
                os._exit(1)  # mid-task, in epoch 1 (tasks 0 and 1 were epoch 0)
            return


@pytest.mark.slow_without_jit  # trains on all of TREC-6
def test_killed_worker_is_retried_and_gives_the_same_model(tmp_path, distributed_model):
    with cluster() as c, distributed.Client(c) as cl:
        cl.register_plugin(KillOnce(tmp_path))
        got = fd.train_supervised(dd.from_pandas(frame(TRAIN), npartitions=4), verbose=0, **SETTINGS)
    assert (tmp_path / "started-2").exists()  # a worker was killed
    np.testing.assert_array_equal(got.input_matrix, distributed_model.input_matrix)
    np.testing.assert_array_equal(got.output_matrix, distributed_model.output_matrix)


@pytest.mark.slow_without_jit  # trains on all of TREC-6
def test_killed_worker_without_retries_is_a_clear_error(tmp_path):
    with cluster(**{"distributed.scheduler.allowed-failures": 0}) as c, distributed.Client(c) as cl:
        cl.register_plugin(KillOnce(tmp_path))
        with pytest.raises(fd.DistributedTrainingError, match="no model was made.*KilledWorker"):
            fd.train_supervised(dd.from_pandas(frame(TRAIN), npartitions=4), verbose=0, **SETTINGS)


def test_arguments_are_checked():
    ddf = dd.from_pandas(frame(TEST), npartitions=2)
    with pytest.raises(ArgumentError, match="no column 'body'"):
        fd.train_supervised(ddf, text="body")
    with pytest.raises(ArgumentError, match="sgd"):
        fd.train_supervised(ddf, optimizer="adagrad")
    with pytest.raises(ArgumentError, match="dask DataFrame"):
        fd.train_supervised(frame(TEST))
    with pytest.raises(ArgumentError, match="Series or Bag"):
        fd.predict(_tiny_model(), ["a"])


def _tiny_model():
    return train_supervised(["__label__a x y", "__label__b z w"], epoch=1, threads=1, verbose=0)


@pytest.mark.parametrize("pooling", ["mean", "tfidf"])
def test_small_run_matches_single_process_dictionary(client, pooling):
    """Small enough to run without the JIT: every phase of the distributed run once."""
    lines = TRAIN.read_text(encoding="utf-8").splitlines()[:300]
    kw = dict(epoch=1, dim=5, threads=1, seed=0, pooling=pooling, min_count_ngram=2)
    single = train_supervised(lines, verbose=0, **kw)
    df = frame(TRAIN).iloc[:300]
    got = fd.train_supervised(dd.from_pandas(df, npartitions=3), verbose=1, **kw)
    assert got.dictionary.words == single.dictionary.words
    np.testing.assert_array_equal(got.dictionary.bucket_ids, single.dictionary.bucket_ids)
    assert got.input_matrix.shape == single.input_matrix.shape
    assert got.train_stats["groups"] == 2
    texts = df["text"].tolist()[:20]
    pred = fd.predict(got, dd.from_pandas(pd.Series(texts), npartitions=2)).compute().tolist()
    assert [p[0] for p in pred] == [p[0] for p in got.predict(texts)]
