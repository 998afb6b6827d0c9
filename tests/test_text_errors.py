"""Errors and warnings of fastembed.text: clear, one line, naming the file."""

from __future__ import annotations

import gzip
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastembed.errors import ArgumentError
from fastembed.text import CorpusError, SkippedLinesWarning, build_corpus, line_limit, read_bytes
from fastembed.text import reader


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


# -- line length limit ---------------------------------------------------------------------------

def _first_long_line(data: bytes, limit: int):
    """Reference: the 1-based number of the first line longer than ``limit`` bytes, or None."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        if len(line) > limit:
            return number
    return None


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 24), min_size=0, max_size=30),
    final_newline=st.booleans(),
    limit=st.integers(1, 20),
    check_chunk=st.integers(1, 64),
    source=st.sampled_from(["bytes", "file", "gzip", "lines"]),
)
def test_the_first_long_line_is_named(tmp_path_factory, lengths, final_newline, limit, check_chunk,
                                      source):
    # tiny pieces, so that lines straddle the pieces the check reads
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reader, "_CHECK_CHUNK", check_chunk)
        mp.setattr(reader, "_READ_CHUNK", check_chunk + 3)
        _check_first_long_line(tmp_path_factory, lengths, final_newline, limit, source)


def _check_first_long_line(tmp_path_factory, lengths, final_newline, limit, source):
    lines = [bytes([97 + i % 26]) * n for i, n in enumerate(lengths)]
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    path = tmp_path_factory.mktemp("lines") / "c.txt"
    if source == "file":
        path.write_bytes(data)
        src = path
    elif source == "gzip":
        path.write_bytes(gzip.compress(data))
        src = path
    elif source == "lines":
        src = lines
        data = b"".join(line + b"\n" for line in lines)
    else:
        src = data
    expected = _first_long_line(data, limit)
    if expected is None:
        assert read_bytes(src, max_line_bytes=limit).tobytes() == data
    else:
        with pytest.raises(CorpusError) as e:
            read_bytes(src, max_line_bytes=limit)
        assert f"line {expected} is longer than {limit} bytes" in one_line(e)


def test_line_limit_applies_to_every_reader_in_its_block(tmp_path):
    p = tmp_path / "c.txt"
    p.write_bytes(b"__label__a " + b"x" * 100 + b"\n")
    with line_limit(50):
        with pytest.raises(CorpusError, match=f"{p}: line 1 is longer than 50 bytes"):
            build_corpus(p)
    d, enc = build_corpus(p)  # the default (8 MiB) is back
    assert enc.n_lines == 1
    for bad in (0, -1, 2**40, 1.5, True, "10"):
        with pytest.raises(ArgumentError, match="max_line_bytes"):
            with line_limit(bad):
                pass


def test_an_endless_device_ends_with_an_error():
    with pytest.raises(CorpusError, match="/dev/zero: line 1 is longer than 1000 bytes"):
        read_bytes("/dev/zero", max_line_bytes=1000)


def test_a_gzip_bomb_stops_at_the_first_long_line(tmp_path):
    p = tmp_path / "bomb.txt.gz"
    p.write_bytes(gzip.compress(bytes(64 << 20)))  # 64 MiB of zeros in 64 KB
    with pytest.raises(CorpusError, match="line 1 is longer than 1048576 bytes"):
        read_bytes(p, max_line_bytes=1 << 20)


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "bad method", "trailing garbage"])
def test_a_damaged_gzip_corpus_is_a_corpus_error(tmp_path, damage):
    data = b"".join(b"__label__%d word%d other%d\n" % (i % 3, i, i * 7) for i in range(5000))
    packed = bytearray(gzip.compress(data))
    if damage == "truncated":
        packed = packed[: len(packed) // 2]
    elif damage == "corrupt":
        for i in range(len(packed) // 2, len(packed) // 2 + 32):
            packed[i] ^= 0xA5
    elif damage == "bad method":
        packed[2] = 9
    else:
        packed += b"\x1f\x8b garbage"
    p = tmp_path / "c.txt.gz"
    p.write_bytes(bytes(packed))
    with pytest.raises(CorpusError) as e:
        build_corpus(p)
    assert f"{p}: corrupt or truncated gzip file" in one_line(e)
