"""Pass 2 of the text pipeline: entries to CSR bags of input rows and label lists.

Works on pass 1's output (:mod:`fastembed.text.scan`) only: token entry ids, never the
bytes again.  Word n-grams and character n-grams are hashed as fastText does.
"""

from __future__ import annotations

import numpy as np

from fastembed.jit import BYTES, njit
from fastembed.text.hashing import FNV_OFFSET, NGRAM_MUL, _fnv_step
from fastembed.text.ngram_rows import bucket_row
from fastembed.text.scan import KIND_WORD, _resize


@njit(**BYTES)
def subword_rows(pool, start, end, minn, maxn, bucket, nwords, row_keys, row_bits, unseen_row, out, pos, buf):
    """fastText's computeSubwords over ``'<' + pool[start:end] + '>'``.

    Writes the row of each character n-gram's bucket ``hash(ngram) % bucket`` (through the
    row map ``row_keys``/``row_bits``/``unseen_row``, see :func:`bucket_row`) to ``out[pos:]``
    (``out.size == 0`` means count only) and returns the new ``pos``.
    ``buf`` is scratch of size >= end - start + 2.
    """
    ln = end - start + 2
    buf[0] = 60  # '<'
    for k in range(end - start):
        buf[k + 1] = pool[start + k]
    buf[ln - 1] = 62  # '>'
    b = np.uint64(bucket)
    for i in range(ln):
        if (buf[i] & 0xC0) == 0x80:
            continue
        h = FNV_OFFSET
        j = i
        nch = 1
        while j < ln and nch <= maxn:
            h = _fnv_step(h, buf[j])
            j += 1
            while j < ln and (buf[j] & 0xC0) == 0x80:
                h = _fnv_step(h, buf[j])
                j += 1
            if nch >= minn and not (nch == 1 and (i == 0 or j == ln)):
                if out.size > 0:
                    out[pos] = bucket_row(row_keys, row_bits, nwords, unseen_row, np.int64(h % b))
                pos += 1
            nch += 1
    return pos


def entry_rows(pool, off, wid, is_word, is_eos, nwords, bucket, minn, maxn, row_keys, row_bits, unseen_row):
    """Input-table rows each entry contributes to a bag (fastText's addSubwords).

    For a word entry: its id ``wid[e]`` if known (``>= 0``), then -- when
    ``maxn > 0`` and the entry is not ``</s>`` -- its character n-grams; an
    unknown word gives only its character n-grams.  Labels give nothing.

    Parameters
    ----------
    pool, off : the entries' bytes.
    wid : int32[m]  word id or -1.
    is_word, is_eos : uint8[m]  flags.
    nwords, bucket, minn, maxn : int
    row_keys, row_bits, unseen_row : the n-gram row map (:mod:`fastembed.text.ngram_rows`).

    Returns
    -------
    (rows_off int64[m + 1], rows int32[rows_off[-1]])
    """
    m = off.size - 1
    rows_off = np.empty(m + 1, np.int64)
    buf = np.empty(int(np.diff(off).max(initial=0)) + 2, np.uint8)
    rows = np.empty(0, np.int32)  # empty: the kernel counts
    _entry_rows(pool, off, wid, is_word, is_eos, nwords, bucket, minn, maxn, row_keys, row_bits,
                unseen_row, rows_off, rows, buf)
    if rows_off[m] > 0:
        rows = np.empty(int(rows_off[m]), np.int32)
        _entry_rows(pool, off, wid, is_word, is_eos, nwords, bucket, minn, maxn, row_keys, row_bits,
                    unseen_row, rows_off, rows, buf)
    return rows_off, rows


@njit(**BYTES)
def _entry_rows(pool, off, wid, is_word, is_eos, nwords, bucket, minn, maxn, row_keys, row_bits,
                unseen_row, rows_off, rows, buf):
    """:func:`entry_rows` in two calls: with ``rows`` empty it counts each entry's rows into
    ``rows_off``, else it writes them to ``rows`` (sized ``rows_off[-1]``); ``buf`` is scratch
    of the longest entry + 2 bytes. The caller allocates: allocating here (NumPy's allocation
    and its error messages) made the kernel's bitcode 44.2 kB instead of 33.5 kB, which a
    process parses when it loads the kernel from Numba's cache."""
    m = off.size - 1
    sub = maxn > 0 and bucket > 0
    if rows.size == 0:
        rows_off[0] = 0
        for e in range(m):
            cnt = 0
            if is_word[e]:
                if wid[e] >= 0:
                    cnt = 1
                if sub and not is_eos[e]:
                    cnt = subword_rows(pool, off[e], off[e + 1], minn, maxn, bucket, nwords,
                                       row_keys, row_bits, unseen_row, rows, cnt, buf)
            rows_off[e + 1] = rows_off[e] + cnt
        return
    for e in range(m):
        if is_word[e]:
            pos = rows_off[e]
            if wid[e] >= 0:
                rows[pos] = wid[e]
                pos += 1
            if sub and not is_eos[e]:
                subword_rows(pool, off[e], off[e + 1], minn, maxn, bucket, nwords,
                             row_keys, row_bits, unseen_row, rows, pos, buf)


@njit(**BYTES)
def word_ngram_buckets(hashes, nw, word_ngrams, bucket, out, pos):
    """fastText's addWordNgrams over the word hashes ``hashes[:nw]``: buckets into ``out[pos:]``.

    ``hashes`` hold each word token's hash sign-extended from int32 to uint64, as fastText's
    ``uint64(int32)``; the n-gram of tokens i..j hashes as ``h = h * 116049371 + hashes[j]``,
    in bucket ``h % bucket``. Returns the new ``pos``.
    """
    b = np.uint64(max(bucket, 1))
    for i in range(nw):
        h = hashes[i]
        jmax = min(nw, i + word_ngrams)
        for j in range(i + 1, jmax):
            h = h * NGRAM_MUL + hashes[j]
            out[pos] = np.int64(h % b)
            pos += 1
    return pos


@njit(**BYTES)
def word_ngram_rows(hashes, nw, word_ngrams, bucket, nwords, row_keys, row_bits, unseen_row, out, pos):
    """:func:`word_ngram_buckets`, each bucket then read through the row map (:func:`bucket_row`)."""
    end = word_ngram_buckets(hashes, nw, word_ngrams, bucket, out, pos)
    for i in range(pos, end):
        out[i] = bucket_row(row_keys, row_bits, nwords, unseen_row, np.int64(out[i]))
    return end


@njit(**BYTES)
def _n_word_ngrams(nw, n):
    # sum over i of min(n - 1, nw - 1 - i)
    if n <= 1 or nw <= 1:
        return 0
    tot = 0
    for i in range(nw):
        k = nw - 1 - i
        tot += k if k < n - 1 else n - 1
    return tot


def count_lines(tok, line_end, kind, label, rows_off, bucket, word_ngrams, keep_all):
    """Pass 2a: which lines are kept, and the CSR offsets of their bags and labels.

    Returns
    -------
    kidx : int64[n_lines]  output index of each line, -1 when dropped.
    offsets : int64[n_kept + 1], label_offsets : int64[n_kept + 1]
    ntokens : int32[n_kept]
    maxw : int  most word tokens in a kept line.
    """
    nlines = line_end.size
    kidx = np.empty(nlines, np.int64)
    offsets = np.empty(nlines + 1, np.int64)
    lab_off = np.empty(nlines + 1, np.int64)
    ntokens = np.empty(nlines, np.int32)
    nkept, maxw = _count_lines(tok, line_end, kind, label, rows_off, bucket, word_ngrams, keep_all,
                               kidx, offsets, lab_off, ntokens)
    if nkept < nlines:  # lines skipped: exactly sized copies, as the arrays were before
        offsets, lab_off, ntokens = offsets[:nkept + 1].copy(), lab_off[:nkept + 1].copy(), ntokens[:nkept].copy()
    return kidx, offsets, lab_off, ntokens, int(maxw)


@njit(**BYTES)
def _count_lines(tok, line_end, kind, label, rows_off, bucket, word_ngrams, keep_all, kidx, offsets,
                 lab_off, ntokens):
    """:func:`count_lines` into its arrays, sized for every line kept; returns ``(n_kept, maxw)``.
    The arrays come from the caller: allocating them here (NumPy's allocation and its error
    messages) made the kernel's bitcode 37.8 kB instead of 27.3 kB, and 32 globals instead of
    12, which a process parses and walks when it loads the kernel from Numba's cache."""
    nlines = line_end.size
    ngr = word_ngrams > 1 and bucket > 0
    nkept = 0
    prev = 0
    for l in range(nlines):
        nl = 0
        for t in range(prev, line_end[l]):
            e = tok[t]
            if kind[e] != KIND_WORD and label[e] >= 0:
                nl += 1
        prev = line_end[l]
        if keep_all or nl > 0:
            kidx[l] = nkept
            nkept += 1
        else:
            kidx[l] = -1
    offsets[0] = 0
    lab_off[0] = 0
    maxw = 0
    prev = 0
    for l in range(nlines):
        start = prev
        prev = line_end[l]
        k = kidx[l]
        if k < 0:
            continue
        nw = 0
        nr = 0
        nl = 0
        for t in range(start, prev):
            e = tok[t]
            if kind[e] == KIND_WORD:
                nw += 1
                nr += rows_off[e + 1] - rows_off[e]
            elif label[e] >= 0:
                nl += 1
        if ngr:
            nr += _n_word_ngrams(nw, word_ngrams)
        if nw > maxw:
            maxw = nw
        offsets[k + 1] = offsets[k] + nr
        lab_off[k + 1] = lab_off[k] + nl
        ntokens[k] = prev - start
    return nkept, maxw


@njit(**BYTES)
def fill_lines(tok, line_end, l0, l1, kidx, offsets, lab_off, kind, label, ehash, rows_off, rows,
               nwords, bucket, word_ngrams, row_keys, row_bits, unseen_row, indices, lab_idx, hbuf):  # fmt: skip
    """Pass 2b: write the bags and labels of lines ``l0..l1-1`` (fastText's getLine).

    Per line, in order: every word token's rows (``rows_off``/``rows`` of its
    entry), then the word n-grams (2..``word_ngrams`` consecutive word tokens,
    known or not, ``</s>`` included, :func:`word_ngram_rows`).  Label tokens
    with a known label id add it to the line's labels (duplicates kept, as fastText).
    """
    ngr = word_ngrams > 1 and bucket > 0
    for l in range(l0, l1):
        k = kidx[l]
        if k < 0:
            continue
        start = line_end[l - 1] if l > 0 else 0
        pos = offsets[k]
        lpos = lab_off[k]
        nw = 0
        for t in range(start, line_end[l]):
            e = tok[t]
            if kind[e] == KIND_WORD:
                for r in range(rows_off[e], rows_off[e + 1]):
                    indices[pos] = rows[r]
                    pos += 1
                hbuf[nw] = np.uint64(np.int64(ehash[e]))
                nw += 1
            elif label[e] >= 0:
                lab_idx[lpos] = label[e]
                lpos += 1
        if ngr:
            word_ngram_rows(hbuf, nw, word_ngrams, bucket, nwords, row_keys, row_bits, unseen_row, indices, pos)


def encode_lines(tok, line_end, kind, label, ehash, rows_off, rows, nwords, bucket, word_ngrams, row_map,
                 keep_all, n_chunks=16):  # fmt: skip
    """Pass 2: bags of rows and label lists, per line; **consumes** ``tok``.

    The offsets are counted first (:func:`count_lines`), then the lines are
    filled (:func:`fill_lines`) in chunks from the last one to the first,
    ``tok`` being shrunk in place after each chunk: the output's pages are
    touched as the token ids are released, so both are never resident in full
    at once.  ``tok`` must be NumPy-owned with no views (as
    :func:`scan_corpus` returns it); it is empty afterwards.

    Parameters
    ----------
    tok : int32[n_tok]  entry per token.
    line_end : int64[n_lines]
    kind : uint8[m]  KIND_WORD / KIND_LABEL per entry.
    label : int32[m]  label id of a label entry, -1 if unknown.
    ehash : int32[m]  fastText hash of each entry, as int32.
    rows_off : int64[m + 1], rows : int32[...]  see :func:`entry_rows`.
    nwords, bucket, word_ngrams : int
    row_map : (row_keys, row_bits, unseen_row)  the n-gram row map; empty keys: hashed rows.
    keep_all : int  1 keeps every line; 0 drops lines with no known label.

    Returns
    -------
    indices int32[nnz], offsets int64[n_kept + 1],
    label_indices int32[nl], label_offsets int64[n_kept + 1],
    ntokens int32[n_kept], n_skipped int,
    kidx int64[n_lines]  the example each line became, -1 for a dropped line
    """
    kidx, offsets, lab_off, ntokens, maxw = count_lines(tok, line_end, kind, label, rows_off, bucket, word_ngrams, keep_all)
    indices = np.empty(int(offsets[-1]), np.int32)
    lab_idx = np.empty(int(lab_off[-1]), np.int32)
    hbuf = np.empty(int(maxw), np.uint64)
    nlines = len(line_end)
    # chunk boundaries (line numbers) with about equal token counts
    bounds = np.unique(np.searchsorted(line_end, np.linspace(0, len(tok), n_chunks + 1)[1:-1], side="right"))
    bounds = [0] + [int(x) for x in bounds if 0 < x < nlines] + [nlines]
    for c in range(len(bounds) - 1, 0, -1):
        l0, l1 = bounds[c - 1], bounds[c]
        fill_lines(tok, line_end, l0, l1, kidx, offsets, lab_off, kind, label, ehash, rows_off, rows,
                   nwords, bucket, word_ngrams, *row_map, indices, lab_idx, hbuf)  # fmt: skip
        _resize(tok, int(line_end[l0 - 1]) if l0 > 0 else 0)
    return indices, offsets, lab_idx, lab_off, ntokens, nlines - (len(offsets) - 1), kidx
