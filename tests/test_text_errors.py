"""Errors and warnings of fastembed.text: clear, one line, naming the file."""

from __future__ import annotations

import gzip
import warnings

import pytest

from fastembed.text import CorpusError, SkippedLinesWarning, build_corpus, read_bytes


def one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path):
    p = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError) as e:
        build_corpus(p)
    assert str(p) in one_line(e)
    with pytest.raises(FileNotFoundError):
        read_bytes(str(p))


@pytest.mark.parametrize("content", [b"", b"   \t \r \0 ", b"\x1f\x8bgz"], ids=["empty", "blank", "gzip-empty"])
def test_empty_corpus(tmp_path, content):
    p = tmp_path / "empty.txt"
    if content.startswith(b"\x1f\x8b"):
        with gzip.open(p, "wb") as f:
            f.write(b"")
    else:
        p.write_bytes(content)
    with pytest.raises(CorpusError) as e:
        build_corpus(str(p))
    assert isinstance(e.value, ValueError)
    msg = one_line(e)
    assert str(p) in msg and "empty" in msg


@pytest.mark.parametrize("content", [b"\n\n\n", b"hello world\nno labels here\n", b"label__x a\n__lab b\n"])
def test_no_labelled_line(tmp_path, content):
    p = tmp_path / "nolabel.txt"
    p.write_bytes(content)
    with pytest.raises(CorpusError) as e:
        build_corpus(p)
    msg = one_line(e)
    assert str(p) in msg and "no labelled line" in msg


def test_labels_below_min_count_label(tmp_path):
    p = tmp_path / "rare.txt"
    p.write_bytes(b"__label__a x\n__label__b y\n")
    with pytest.raises(CorpusError, match="min_count_label=2") as e:
        build_corpus(p, min_count_label=2)
    assert str(p) in one_line(e)


def test_non_path_sources_are_named():
    with pytest.raises(CorpusError, match="<bytes>"):
        build_corpus(b"a b c\n")
    with pytest.raises(CorpusError, match="<lines>"):
        build_corpus(["a b c"])


def test_skipped_lines_warned_once(tmp_path):
    p = tmp_path / "mixed.txt"
    p.write_bytes(b"__label__a x\n\nno label\n__label__zz_unknown y\n__label__a z\n")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        d, enc = build_corpus(p, min_count_label=2)
    skipped = [x for x in w if issubclass(x.category, SkippedLinesWarning)]
    assert len(skipped) == 1
    msg = str(skipped[0].message)
    assert "skipped 3 of 5 lines" in msg and str(p) in msg and "\n" not in msg
    assert enc.n_skipped == 3 and enc.n_lines == 2
    # predict mode keeps every line, silently
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        enc2 = d.encode(p, keep_unlabelled=True)
    assert not [x for x in w if issubclass(x.category, SkippedLinesWarning)]
    assert enc2.n_lines == 5 and enc2.n_skipped == 0


def test_no_warning_when_nothing_skipped():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedLinesWarning)
        build_corpus(["__label__a x", "__label__b y"])


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(word_ngrams=2, bucket=0), "bucket"),
        (dict(maxn=3, bucket=0), "bucket"),
        (dict(word_ngrams=0), "word_ngrams"),
        (dict(label_prefix=""), "label_prefix"),
        (dict(label_prefix="</"), "label_prefix"),
        (dict(bucket=-1, word_ngrams=2), "bucket"),
        (dict(minn=-1), "minn"),
    ],
)
def test_bad_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        build_corpus(["__label__a x"], **kw)


def test_bad_source_type():
    with pytest.raises(TypeError):
        read_bytes(12)
    with pytest.raises(TypeError):
        read_bytes([1, 2])
