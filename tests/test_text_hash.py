"""fastText's FNV-1a hash (signed-byte variant) and the n-gram row formulas."""

from __future__ import annotations

import numpy as np
import pytest
from text_reference import fnv1a

from fastembed.text import build_corpus, fnv1a_hash


@pytest.mark.parametrize(
    "data, expected",
    [(b"", 0x811C9DC5), (b"a", 0xE40C292C), (b"foobar", 0xBF9CF968)],
)
def test_published_fnv1a_vectors(data, expected):
    assert fnv1a_hash(data) == expected
    assert fnv1a(data) == expected


def test_signed_bytes_by_hand():
    # one byte 0xE9: as a signed char it is -23, i.e. 0xFFFFFFE9 once widened
    h = 0x811C9DC5 ^ 0xFFFFFFE9
    h = (h * 16777619) % 2**32
    assert fnv1a_hash(b"\xe9") == h
    # plain (unsigned) FNV-1a would differ
    unsigned = ((0x811C9DC5 ^ 0xE9) * 16777619) % 2**32
    assert fnv1a_hash(b"\xe9") != unsigned
    # str is hashed as its UTF-8 bytes
    assert fnv1a_hash("\u00e9") == fnv1a("\u00e9".encode())


def test_hash_range_and_reference_agree():
    rng = np.random.default_rng(0)
    for _ in range(200):
        b = rng.integers(0, 256, size=rng.integers(0, 20), dtype=np.uint8).tobytes()
        h = fnv1a_hash(b)
        assert 0 <= h < 2**32 and h == fnv1a(b)


def test_plain_python_hash_matches_the_kernel():
    from fastembed.text.hashing import fnv1a_bytes

    rng = np.random.default_rng(1)
    for b in [b"", b"</s>", b"\xe9", bytes(range(256))] + [
            rng.integers(0, 256, size=rng.integers(0, 40), dtype=np.uint8).tobytes() for _ in range(100)]:
        assert fnv1a_bytes(b) == fnv1a_hash(b) == fnv1a(b)


def test_bigram_rows_by_hand():
    """Row of a bigram: int32 hashes sign-extended to uint64, h * 116049371 + h2, mod bucket."""
    bucket = 1_000_003
    d, enc = build_corpus(["__label__x na\u00efve b"], word_ngrams=2, bucket=bucket)

    def s64(h):  # int32(h) sign-extended, as uint64
        return (h - 2**32 if h >= 2**31 else h) % 2**64

    toks = ["na\u00efve".encode(), b"b", b"</s>"]
    hs = [fnv1a(t) for t in toks]
    assert hs[0] >= 2**31  # a negative int32: the sign extension matters
    buckets = [(s64(hs[i]) * 116049371 + s64(hs[i + 1])) % 2**64 % bucket for i in range(2)]
    # the dictionary's row map: the used buckets, by first appearance, follow the words
    assert d.bucket_ids.tolist() == buckets
    assert enc.bag(0).tolist() == [d.get_word_id(t) for t in toks] + [d.nwords, d.nwords + 1]


def test_the_eos_hash_constant():
    from fastembed.text.dictionary import _EOS_HASH

    assert _EOS_HASH == fnv1a_hash(b"</s>") == fnv1a(b"</s>")
