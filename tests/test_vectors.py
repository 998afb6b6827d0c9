"""``fastembed vectors``: word2vec text that strict UTF-8 readers (gensim) load."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fastembed
from fastembed.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def latin1_model(tmp_path_factory):
    # real 20 Newsgroups lines with Latin-1 bytes in some words
    data = gzip.decompress((FIXTURES / "20newsgroups_train_latin1_slice.txt.gz").read_bytes())
    assert any(b >= 0x80 for b in data)
    model = fastembed.train_supervised(data, dim=8, epoch=1, threads=1, verbose=0)
    path = tmp_path_factory.mktemp("vec") / "m.fe"
    model.save(path)
    return model, path


def test_vectors_are_valid_utf8_with_every_word_distinct(latin1_model, tmp_path):
    model, path = latin1_model
    out = tmp_path / "w.vec"
    result = CliRunner().invoke(main, ["vectors", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_bytes().decode("utf-8")  # strict: raises on any invalid byte
    lines = text.splitlines()
    assert lines[0] == f"{model.dictionary.nwords} {model.dim}"
    words = [line.split(" ", 1)[0] for line in lines[1:]]
    assert len(set(words)) == len(words) == model.dictionary.nwords
    raw = model.dictionary.word_bytes
    non_utf8 = [i for i, w in enumerate(raw) if not _is_utf8(w)]
    assert non_utf8, "the fixture should hold non-UTF-8 words"
    for i in non_utf8:
        assert "\\x" in words[i] and words[i].encode("ascii", "backslashreplace")


def test_gensim_reads_the_vectors(latin1_model, tmp_path):
    keyed = pytest.importorskip("gensim.models.keyedvectors")
    model, path = latin1_model
    out = tmp_path / "w.vec"
    assert CliRunner().invoke(main, ["vectors", str(path), "-o", str(out)]).exit_code == 0
    kv = keyed.KeyedVectors.load_word2vec_format(str(out), binary=False)
    assert len(kv.index_to_key) == model.dictionary.nwords
    expected = model.word_vectors()
    for i in (0, 1, len(expected) // 2, len(expected) - 1):
        np.testing.assert_allclose(kv[kv.index_to_key[i]], expected[i], rtol=1e-4, atol=1e-6)


def _is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
