"""Out-of-core corpora: a corpus file encoded piece by piece into files, trained on through mmap.

:func:`build_corpus` holds the whole corpus in memory three times over at its peak (the bytes,
then the token ids and the bags); on a 1.43 GB corpus ``fastembed train`` peaked at 4.4 GB
(issue 16). Here the same two passes stream:

* pass 1 reads the file (plain or gzip) in pieces of :data:`PIECE_BYTES` that end at line ends
  (:func:`~fastembed.text.reader.read_line_chunks`); the scanner keeps only the dictionary's
  entries, and writes each piece's token ids and line ends to files;
* pass 2 reads those back in pieces of about :data:`ENCODE_TOKENS` tokens, encodes them with the
  same kernels, numbers the n-gram rows as it goes (:class:`~fastembed.text.ngram_rows.RowNumbering`)
  and appends the bags, labels, offsets and token counts to files; ``min_count_ngram`` pruning
  is one more pass over the bag file, piece by piece.

The result, a :class:`MappedCorpus`, maps those files (``MAP_PRIVATE``, never written, so the
arrays are writable and the kernels compile for the same types as in memory). Training reads
them through the page cache, and :meth:`MappedCorpus.release_pages` (called once the lines read
since the last call hold :data:`RELEASE_BYTES`, :meth:`MappedCorpus.lines_read`, and at the
trainer's poll, every 0.1 s) unmaps what was read, so the process's resident set stays the
model plus a fixed working set while the kernel keeps the pages cached. For that, an epoch
visits the lines block by block (:meth:`MappedCorpus.shuffled_segments`) rather than in one
random permutation, and that order is made a piece at a time. Files go to a temporary directory, removed as soon
as they are mapped, or to ``cache_dir`` (:mod:`fastembed.text.corpus_cache`).
"""

from __future__ import annotations

import mmap
import os
import threading
import warnings
from dataclasses import dataclass, field

import numpy as np

from fastembed.errors import ArgumentError

from . import encode as _enc
from . import ngram_rows as _rows
from .building import dictionary_from_entries
from .dictionary import _EOS_B, _check_settings, _ro
from .encoded import EncodedCorpus, SkippedLinesWarning
from .reader import read_line_chunks, text_bytes
from .scan import Scanner

__all__ = ["ARRAYS", "OUT_OF_CORE_MIN_BYTES", "MappedCorpus", "encode_to_files", "map_corpus",
           "use_out_of_core"]

# Corpora from this size on are encoded to files. Below it the in-memory path peaks at ~3x the
# file (768 MB at most) and skips the file writes; above it the out-of-core path costs the same
# tokens/s (README, "Scaling out") at a resident set that does not grow with the corpus.
OUT_OF_CORE_MIN_BYTES = 256 << 20
PIECE_BYTES = 32 << 20  # text per pass-1 piece: its token ids are ~0.7x that, in memory once
ENCODE_TOKENS = 4 << 20  # tokens per pass-2 piece: ~2 bags rows each with bigrams, 4 bytes a row
_PRUNE_ROWS = 4 << 20  # bag rows per piece of the pruning pass (16 MB)
SHUFFLE_ROWS = 1 << 20  # bag rows per block of an epoch's order (4 MB of rows, 4 MB of weights)
# Lines of an epoch's order made at once (16 MB of int64), whatever the corpus: the threads wait
# for each other once per piece (on the scale corpus, ~200 tokens a line: ~20 s of training apart).
SEGMENT_LINES = 1 << 21
# Bytes of the mapped files read (on average over the lines read) between two page releases
# during training (MappedCorpus.lines_read): the file-backed resident set is about this plus the
# blocks the threads are in (8 MB each with weights, SHUFFLE_ROWS rows of 8 bytes).
RELEASE_BYTES = 32 << 20

# The files of an encoded corpus: name -> dtype (EncodedCorpus's arrays).
ARRAYS = {"indices": np.int32, "offsets": np.int64, "label_indices": np.int32,
          "label_offsets": np.int64, "ntokens": np.int32}


def use_out_of_core(source, cache_dir) -> bool:
    """Whether ``source`` is trained on out of core: a file of at least OUT_OF_CORE_MIN_BYTES
    of text (decompressed, for gzip: see :func:`~fastembed.text.reader.text_bytes`), or any file
    when ``cache_dir`` is given (ArgumentError if ``source`` is not a file then)."""
    is_path = isinstance(source, (str, os.PathLike))
    if cache_dir is not None:
        if not is_path or not os.path.isfile(source):
            raise ArgumentError("cache_dir needs the corpus as a path to a regular file")
        return True
    return is_path and os.path.isfile(source) and text_bytes(source) >= OUT_OF_CORE_MIN_BYTES


@dataclass
class MappedCorpus(EncodedCorpus):
    """An :class:`EncodedCorpus` whose arrays map files (see the module docstring)."""

    maps: list = field(default_factory=list, repr=False)
    _unreleased: int = field(default=0, repr=False, compare=False)  # lines read since the last release
    _release_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def release_pages(self):
        """Unmap the pages read so far (they stay in the page cache): bounds the resident set."""
        for m in self.maps:
            m.madvise(mmap.MADV_DONTNEED)

    def lines_read(self, n):
        """Count ``n`` more lines read in the epoch's order, and release the pages once the lines
        read since the last release hold :data:`RELEASE_BYTES` of the mapped files (weights
        included, on average). Called by the trainers after each chunk of work, from any thread.

        Released by time only (every 0.1 s, at the trainer's poll), the pages mapped between two
        releases are bounded by the training's speed; by volume, they are at most the lines
        read since the last release plus the blocks the threads are in (a block's lines are
        visited in random order, so a few of them map the whole block: fault-around).
        """
        with self._release_lock:
            self._unreleased += n
            if self._unreleased < self.release_lines():
                return
            self._unreleased = 0
        self.release_pages()

    def release_lines(self):
        """Lines holding about :data:`RELEASE_BYTES` of the mapped files, at least one."""
        mapped = sum(len(m) for m in self.maps)
        return max(1, int(RELEASE_BYTES * max(self.n_lines, 1) / max(mapped, 1)))

    def shuffled_order(self, rng):
        """An epoch's order of the lines: blocks of about SHUFFLE_ROWS bag rows, the blocks in
        random order, the lines of each block in random order (:meth:`shuffled_segments`, whole).
        """
        return np.concatenate(list(self.shuffled_segments(rng)))

    def shuffled_segments(self, rng, segment_lines=None):
        """An epoch's order of the lines in consecutive pieces of whole blocks, each of at least
        ``segment_lines`` lines (:data:`SEGMENT_LINES`) but the last.

        Blocks of about SHUFFLE_ROWS bag rows, the blocks in random order, the lines of each
        block in random order. A full permutation would touch the whole mapping between two
        :meth:`release_pages`: every page fault maps 64 KiB around it (the kernel's
        fault-around), and 0.1 s of training faults in thousands of random places. Block by
        block, the threads work in one or two blocks at a time. One block: exactly
        ``rng.permutation(n)``, the in-memory order.

        The pieces are made as they are asked for, so an epoch's order is never in memory whole:
        one int64 a line grew the training's resident set by ~12 MB per 1.28M lines (1.5 GB of
        the scale corpus). The random draws are the same in the same sequence whatever
        ``segment_lines``, so the concatenated pieces are one order.
        """
        segment_lines = SEGMENT_LINES if segment_lines is None else segment_lines
        n, offsets = self.n_lines, self.offsets
        starts = np.searchsorted(offsets, np.arange(0, int(offsets[-1]), SHUFFLE_ROWS), side="right") - 1
        bounds = np.unique(np.concatenate([[0], np.clip(starts, 0, n), [n]]))
        # the binary searches' last steps touched every part of `offsets` (8 bytes a line): one
        # search per block, each fault mapping 64 KiB around it
        self.release_pages()
        if len(bounds) <= 2:
            yield rng.permutation(n).astype(np.int64)
            return
        blocks = rng.permutation(len(bounds) - 1).tolist()
        first = 0
        while first < len(blocks):
            end, size = first, 0
            while end < len(blocks) and size < segment_lines:
                size += int(bounds[blocks[end] + 1] - bounds[blocks[end]])
                end += 1
            piece, pos = np.empty(size, np.int64), 0  # filled in place: no second copy
            for b in blocks[first:end]:
                lo, hi = int(bounds[b]), int(bounds[b + 1])
                piece[pos:pos + hi - lo] = lo + rng.permutation(hi - lo)
                pos += hi - lo
            first = end
            yield piece
            del piece  # not held while the caller asks for the next


def map_corpus(directory, counts, n_skipped) -> MappedCorpus:
    """Map the files of an encoded corpus; ``counts`` gives each array's length (checked)."""
    arrays, maps = {}, []
    for name, dtype in ARRAYS.items():
        n = int(counts[name])
        path = os.path.join(directory, name)
        nbytes = n * np.dtype(dtype).itemsize
        if os.path.getsize(path) != nbytes:
            raise ValueError(f"{path}: {os.path.getsize(path)} bytes, expected {nbytes}")
        if n == 0:
            arrays[name] = np.zeros(0, dtype)
            continue
        with open(path, "rb") as f:
            m = mmap.mmap(f.fileno(), nbytes, access=mmap.ACCESS_COPY)
        maps.append(m)
        arrays[name] = np.frombuffer(m, dtype=dtype, count=n)
    return MappedCorpus(**arrays, n_skipped=int(n_skipped), maps=maps)


def _read_at(f, dtype, start, count):
    f.seek(start * np.dtype(dtype).itemsize)
    return np.fromfile(f, dtype=dtype, count=count)


def _pieces_with_last(pieces):
    """``(piece, is_last)`` for each piece of an iterator."""
    it = iter(pieces)
    prev = next(it)
    for piece in it:
        yield prev, False
        prev = piece
    yield prev, True


def _scan_to_files(path, prefix, workdir, threads):
    """Pass 1: entries in memory, token ids and line ends appended to files. Returns
    ``(entries, n_lines)``."""
    scanner = Scanner(prefix, _ro(np.frombuffer(_EOS_B, np.uint8)), threads=threads)
    n_tok = n_lines = 0
    with open(os.path.join(workdir, "tok"), "wb") as ftok, \
            open(os.path.join(workdir, "line_end"), "wb") as fline:
        for piece, last in _pieces_with_last(read_line_chunks(path, PIECE_BYTES)):
            scanner.feed(piece, final=last)
            tok, line_end = scanner.take_tokens()
            tok.tofile(ftok)
            (line_end + n_tok).tofile(fline)
            n_tok += tok.size
            n_lines += line_end.size
            del tok, line_end
    return scanner.entries(), n_lines


def _encode_from_files(d, entries, wid, label, n_lines, workdir):
    """Pass 2: the bags of every line, written to the ARRAYS files. Returns ``(counts, n_skipped,
    row numbering)``."""
    e_hash, _, e_label, e_off, pool = entries
    no_map = (np.zeros(0, np.uint64), 0, 0)  # hashed rows, numbered piece by piece below
    rows_off, rows, ehash = d._entry_tables(e_hash, e_label, e_off, pool, wid, no_map)
    numbering = _rows.RowNumbering(d.nwords, d.bucket) if d.bucket > 0 else None
    counts = dict.fromkeys(ARRAYS, 0)
    outs = {name: open(os.path.join(workdir, name), "wb") for name in ARRAYS}
    try:
        np.zeros(1, np.int64).tofile(outs["offsets"])
        np.zeros(1, np.int64).tofile(outs["label_offsets"])
        counts["offsets"] = counts["label_offsets"] = 1
        nnz = n_lab = 0
        with open(os.path.join(workdir, "tok"), "rb") as ftok, \
                open(os.path.join(workdir, "line_end"), "rb") as fline:
            line = tok_start = 0
            while line < n_lines:
                line_end = _read_at(fline, np.int64, line, min(n_lines - line, ENCODE_TOKENS // 16 + 1))
                k = max(int(np.searchsorted(line_end, tok_start + ENCODE_TOKENS, side="right")), 1)
                line_end = line_end[:k] - tok_start
                tok = _read_at(ftok, np.int32, tok_start, int(line_end[-1]))
                kidx, offsets, lab_off, ntokens, maxw = _enc.count_lines(
                    tok, line_end, e_label, label, rows_off, d.bucket, d.word_ngrams, 0)
                indices = np.empty(int(offsets[-1]), np.int32)
                lab_idx = np.empty(int(lab_off[-1]), np.int32)
                _enc.fill_lines(tok, line_end, 0, k, kidx, offsets, lab_off, e_label, label, ehash,
                                rows_off, rows, d.nwords, d.bucket, d.word_ngrams, *no_map, indices,
                                lab_idx, np.empty(int(maxw), np.uint64))
                if numbering is not None:
                    numbering.feed(indices)
                for name, a in (("indices", indices), ("label_indices", lab_idx),
                                ("offsets", offsets[1:] + nnz), ("label_offsets", lab_off[1:] + n_lab),
                                ("ntokens", ntokens)):
                    a.tofile(outs[name])
                    counts[name] += a.size
                nnz += indices.size
                n_lab += lab_idx.size
                line += k
                tok_start += int(line_end[-1])
    finally:
        for f in outs.values():
            f.close()
    os.remove(os.path.join(workdir, "tok"))
    os.remove(os.path.join(workdir, "line_end"))
    return counts, n_lines - (counts["offsets"] - 1), numbering


def _prune_file(path, nnz, nwords, row_counts, min_count_ngram):
    """:func:`~fastembed.text.ngram_rows.prune_rows` over the bag file, piece by piece."""
    kept = None
    with open(path, "r+b") as f:
        for start in range(0, nnz, _PRUNE_ROWS):
            piece = _read_at(f, np.int32, start, min(_PRUNE_ROWS, nnz - start))
            kept = _rows.prune_rows(piece, nwords, row_counts, min_count_ngram)
            f.seek(start * 4)
            piece.tofile(f)
    return kept


def encode_to_files(path, workdir, *, label_prefix="__label__", min_count=1, min_count_label=1,
                    word_ngrams=1, bucket=2_000_000, minn=0, maxn=0, min_count_ngram=1, threads=0):
    """:func:`~fastembed.text.build_corpus` of the file ``path``, its arrays written to ``workdir``.

    Returns ``(dictionary, counts, n_skipped)``: ``counts`` maps each name of :data:`ARRAYS`
    (a file in ``workdir``) to its length. Memory: the dictionary's entries and one piece.
    """
    pre, word_ngrams, bucket, minn, maxn = _check_settings(label_prefix, word_ngrams, bucket, minn, maxn)
    name = os.fspath(path)
    entries, n_lines = _scan_to_files(path, _ro(np.frombuffer(pre, np.uint8)), workdir, threads)
    d, wid, label = dictionary_from_entries(
        name, entries, n_lines, label_prefix=pre, min_count=min_count, min_count_label=min_count_label,
        word_ngrams=word_ngrams, bucket=bucket, minn=minn, maxn=maxn)
    counts, n_skipped, numbering = _encode_from_files(d, entries, wid, label, n_lines, workdir)
    del entries, wid, label
    if numbering is not None:
        bucket_ids, row_counts = numbering.result()
        if min_count_ngram > 1 and bucket_ids.size:
            kept = _prune_file(os.path.join(workdir, "indices"), counts["indices"], d.nwords,
                               row_counts, int(min_count_ngram))
            if kept is not None:
                bucket_ids = bucket_ids[kept]
        d._set_bucket_ids(bucket_ids)
    if n_skipped:
        warnings.warn(f"{name}: skipped {n_skipped} of {n_lines} lines (blank or without a known label)",
                      SkippedLinesWarning, stacklevel=3)
    return d, counts, n_skipped
