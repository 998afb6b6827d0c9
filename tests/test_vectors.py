"""``fastembed vectors``: word2vec text that strict UTF-8 readers (gensim) load."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import fastembed
from fastembed.cli import main
from fastembed.wordvec.vectors import vec_word, vec_word_bytes, write_word2vec

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


# -- the escaping of words (vec_word): one-to-one, valid UTF-8, ordinary words unchanged ---------

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@hypothesis.settings(deadline=None, max_examples=300)
@hypothesis.given(st.binary(max_size=24) | st.text(alphabet="\\xX0aF9é\u00ff", max_size=12).map(
    lambda s: s.encode("utf-8")) | st.lists(st.sampled_from([b"\\", b"x", b"4", b"1", b"\xe9", b"\xc3"]),
                                            max_size=10).map(b"".join))
def test_vec_word_is_valid_utf8_and_reads_back(word):
    text = vec_word(word)
    text.encode("utf-8", "strict")  # no lone surrogate: valid UTF-8 once written
    assert vec_word_bytes(text) == word  # a left inverse: no two words share a text


def test_vec_word_keeps_ordinary_words_and_separates_literal_escapes():
    for word in ("café", "C:\\dir", "a\\b", "\\x4", "\\xg1", "x41", "日本"):
        assert vec_word(word.encode("utf-8")) == word  # as fastText writes it
    assert vec_word(b"caf\xe9") == "caf\\xe9"
    assert vec_word(b"caf\\xe9") == "caf\\x5cxe9"  # the text, not the Latin-1 byte
    assert vec_word(b"\\x41") == "\\x5cx41"


def test_gensim_keeps_a_literal_escape_apart_from_the_byte(tmp_path):
    keyed = pytest.importorskip("gensim.models.keyedvectors")

    words = [b"caf\xe9", b"caf\\xe9", b"\\x41", b"A", b"plain", b"back\\slash"]
    matrix = np.arange(len(words) * 3, dtype=np.float32).reshape(len(words), 3) / 7
    out = tmp_path / "w.vec"
    with open(out, "wb") as f:
        write_word2vec(f, words, matrix)
    kv = keyed.KeyedVectors.load_word2vec_format(str(out), binary=False)
    assert [vec_word_bytes(k) for k in kv.index_to_key] == words
    assert kv.index_to_key[3:] == ["A", "plain", "back\\slash"]
    np.testing.assert_allclose(kv.vectors, matrix, rtol=1e-4)
