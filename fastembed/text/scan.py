"""Pass 1 of the text pipeline: tokenise the bytes, hash and count distinct tokens.

Everything here works on raw bytes (``uint8`` arrays) and plain integer arrays;
the Python layer (:mod:`fastembed.text.dictionary`) only allocates, sorts the
vocabulary with NumPy and wires the kernels together.  Pass 2 is
:mod:`fastembed.text.encode`; hashing and the token table are
:mod:`fastembed.text.hashing`.

Conventions shared by all text kernels
--------------------------------------
* ``data`` is always passed as a **read-only**, C-contiguous ``uint8`` view (the
  Python layer makes one with :func:`as_readonly_u8`), so every kernel is
  compiled for exactly one array type whatever the source (``np.fromfile``,
  ``np.frombuffer(bytes)``, ...).  Integer scalars are passed as Python ``int``
  (Numba ``int64``), flags as ``int`` 0/1: one compiled variant per kernel.
* Tokenisation is fastText's ``Dictionary::readWord``: separators are
  ``' ' '\\n' '\\r' '\\t' '\\v' '\\f' '\\0'``; ``'\\n'`` ends a line and is read as
  the end-of-sentence token ``</s>``.
* Hashing is fastText's 32-bit FNV-1a over the bytes taken as *signed* chars:
  ``h ^= uint32(int8(c)); h *= 16777619``.
* An *entry* is one distinct token of a scanned text, numbered by first
  appearance.  Its bytes live in a byte pool: entry ``e`` is
  ``pool[off[e]:off[e + 1]]``.

All kernels are ``@njit(cache=True, nogil=True)`` and serial (one core); the
two drivers :func:`scan_corpus` and :func:`encode_lines` are plain Python that
only grow/shrink buffers between kernel calls. On large inputs :class:`Scanner` runs the scan
kernel on several cores at once, each on its own byte range with its own table, and merges
the partial results serially (:meth:`Scanner.feed`, kernels in :mod:`fastembed.text.scan_parts`).
"""


from __future__ import annotations

import threading

import numpy as np

from fastembed.jit import BYTES, njit
from fastembed.text.hashing import (
    EMPTY,
    FNV_OFFSET,
    IS_SEPARATOR,
    NEWLINE,
    _fill_table,
    _find,
    _fnv_step,
    _is_sep,
    _put_entry,
    fnv1a_bytes,
)

from . import scan_parts as _parts

KIND_WORD = 0
KIND_LABEL = 1

@njit(**BYTES)
def _insert(table, slot, e_hash, e_count, e_label, e_off, pool, nent, src, start, ln, h, prefix):
    """Append entry ``nent`` (capacity already checked) at free ``slot``; a label if it starts
    with ``prefix``."""
    klen = prefix.size
    lab = 0
    if ln >= klen:
        lab = 1
        for k in range(klen):
            if src[start + k] != prefix[k]:
                lab = 0
                break
    _put_entry(table, slot, e_hash, e_count, e_label, e_off, pool, nent, src, start, ln, h, lab)


@njit(**BYTES)
def _scan_chunk(data, i, prefix, eos, eos_h, st, table, bits, e_hash, e_count, e_label, e_off, pool, tok, line_end):
    """Scan from byte ``i`` until the end or until a buffer is full.

    ``st`` is int64[4]: ``ntok, nlines, nent, eos_e``, updated in place.
    Never reallocates: returns ``(i, need)`` where ``need`` is 0 at the end of
    the data, 1 when a buffer must grow before going on (``i`` is then the
    start of the token that did not fit; ``need_pool`` bytes in ``st``-order).
    """
    n = data.size
    ntok = st[0]
    nlines = st[1]
    nent = st[2]
    eos_e = st[3]
    tokcap = tok.size
    linecap = line_end.size
    ecap = e_hash.size
    maxent = ((np.int64(1) << bits) * 5) // 8  # table load <= 5/8
    need = 0
    while True:
        # room for one more token, line and entry (and its table slot)
        if ntok >= tokcap or nlines >= linecap or nent >= ecap or nent + 1 > maxent:
            need = 1
            break
        while i < n:
            c = data[i]
            if c == NEWLINE or not _is_sep(c):
                break
            i += 1
        if i >= n:
            break
        if data[i] == NEWLINE:
            if eos_e < 0:
                e = _find(table, bits, e_off, pool, eos, 0, eos.size, eos_h)
                if e < 0:
                    if e_off[nent] + eos.size > pool.size:
                        need = 1
                        break
                    _insert(table, -1 - e, e_hash, e_count, e_label, e_off, pool, nent, eos, 0, eos.size, eos_h, prefix)
                    e = nent
                    nent += 1
                eos_e = e
            i += 1
            e_count[eos_e] += 1
            tok[ntok] = eos_e
            ntok += 1
            line_end[nlines] = ntok
            nlines += 1
            continue
        start = i
        h = FNV_OFFSET
        while i < n:
            c = data[i]
            if _is_sep(c):
                break
            h = _fnv_step(h, c)
            i += 1
        ln = i - start
        e = _find(table, bits, e_off, pool, data, start, ln, h)
        if e < 0:
            if e_off[nent] + ln > pool.size:
                i = start
                need = 1
                break
            _insert(table, -1 - e, e_hash, e_count, e_label, e_off, pool, nent, data, start, ln, h, prefix)
            e = nent
            nent += 1
        e_count[e] += 1
        tok[ntok] = e
        ntok += 1
    st[0] = ntok
    st[1] = nlines
    st[2] = nent
    st[3] = eos_e
    return i, need


@njit(**BYTES)
def _close_last_line(data, prefix, eos, eos_h, st, table, bits, e_hash, e_count, e_label, e_off, pool, tok, line_end):
    """Close a final line without ``'\\n'`` with an uncounted ``</s>`` token.

    The caller guarantees room for one more token, line, entry and ``eos`` bytes.
    """
    ntok = st[0]
    nlines = st[1]
    nent = st[2]
    eos_e = st[3]
    if eos_e < 0:
        e = _find(table, bits, e_off, pool, eos, 0, eos.size, eos_h)
        if e < 0:  # never seen: a zero-count entry (always below min_count)
            _insert(table, -1 - e, e_hash, e_count, e_label, e_off, pool, nent, eos, 0, eos.size, eos_h, prefix)
            e = nent
            nent += 1
        eos_e = e
    tok[ntok] = eos_e
    ntok += 1
    line_end[nlines] = ntok
    nlines += 1
    st[0] = ntok
    st[1] = nlines
    st[2] = nent
    st[3] = eos_e


def _resize(a: np.ndarray, n: int) -> np.ndarray:
    """Grow or shrink a NumPy-owned array in place (``realloc``: ``mremap`` for big blocks, no copy)."""
    a.resize(n, refcheck=False)
    return a


# The entries a scan of n bytes starts with room for (and a token table to match): growing them
# later calls _fill_table, whose load from Numba's cache costs a process 3-5 ms of CPU (TREC-6
# training). Distinct tokens per byte measured: TREC-6 1/37, SMS 1/30, TREC-50 1/40, Reuters 1/90,
# 20 Newsgroups 1/76, SST-2 1/293, IMDB 1/119; so 1/16 covers the small corpora, where that load
# is a sizeable part of the run, and the cap bounds the start (5 MB) on large ones.
_BYTES_PER_ENTRY = 16
_MIN_ENTRIES = 4096
_MAX_START_ENTRIES = 1 << 17


def scan_corpus(data, prefix, eos, threads=0):
    """Pass 1: tokenise ``data``, hash every token, count distinct tokens.

    One sequential pass over the bytes (:func:`_scan_chunk`, Numba).  Each
    token is hashed while it is read and looked up in an open-addressing
    table (linear probing, load <= 5/8, keys ``hash << 32 | entry``); a new
    token gets the next entry id and its bytes are copied to the pool, so
    ``data`` is not needed afterwards.  The scan never reallocates: this
    Python driver grows the buffers between chunks, in place with ``realloc``
    (factor 1.5), and trims them at the end.

    Parameters
    ----------
    data : uint8[n_bytes], read-only
        The corpus bytes.
    prefix : uint8[k], read-only
        Label prefix (``b"__label__"``); an entry whose bytes start with it is a label.
    eos : uint8[4], read-only
        ``b"</s>"``.
    threads : int
        At most this many threads scan a large text (:meth:`Scanner.feed`); 0: every usable core.

    Returns
    -------
    tok : int32[n_tok]
        Entry id of every token, in text order, an ``</s>`` token closing every
        line.  A final line without ``'\\n'`` also gets an ``</s>`` token, but
        it is not counted (fastText counts ``</s>`` once per newline).
        NumPy-owned and exactly sized: :func:`encode_lines` consumes it.
    line_end : int64[n_lines]
        ``tok[line_end[l-1]:line_end[l]]`` are the tokens of line ``l``.
        A final line without a newline exists iff any byte follows the last
        newline.
    e_hash : uint64[n_ent]
        FNV-1a hash (uint32 value) of each entry.
    e_count : int64[n_ent]
        Occurrences, as fastText's ``Dictionary::add`` counts them.
    e_label : uint8[n_ent]
        1 if the entry starts with ``prefix``.
    e_off : int64[n_ent + 1]
        Entry ``e`` is ``pool[e_off[e]:e_off[e + 1]]``.
    pool : uint8[e_off[-1]]
        Entry bytes, entries in first-appearance order.
    """
    n = int(data.size)
    scanner = Scanner(prefix, eos, tok_capacity=n // 4 + 16, line_capacity=n // 64 + 16,
                      entry_capacity=min(max(n // _BYTES_PER_ENTRY, _MIN_ENTRIES), _MAX_START_ENTRIES),
                      threads=threads)
    scanner.feed(data, final=True)
    return scanner.take_tokens() + scanner.entries()


class Scanner:
    """Pass 1 over one text fed in pieces that end at line ends (the last piece may not).

    The token table, entries and byte pool live across pieces; the token ids and line ends of
    the pieces fed since the last :meth:`take_tokens` are kept until then (line ends counted
    from there), so a streaming caller can write them out and keep its memory bounded.
    The scan never reallocates: the buffers grow between kernel calls, in place with
    ``realloc`` (factor 1.5). ``threads``: at most this many threads scan a large text
    (:meth:`feed`); 0: every usable core.
    """

    def __init__(self, prefix, eos, tok_capacity=1 << 16, line_capacity=1 << 12, entry_capacity=_MIN_ENTRIES,
                 threads=0):
        self.prefix, self.eos = prefix, eos
        self.eos_h = np.uint64(fnv1a_bytes(eos.tobytes()))  # a uint64 scalar, not a Python int
        self.tok = np.empty(tok_capacity, np.int32)
        self.line_end = np.empty(line_capacity, np.int64)
        ecap = entry_capacity
        self.e_hash = np.empty(ecap, np.uint64)
        self.e_count = np.empty(ecap, np.int64)
        self.e_label = np.empty(ecap, np.uint8)
        self.e_off = np.zeros(ecap + 1, np.int64)
        self.pool = np.empty(65536, np.uint8)
        self.bits = 13
        while ecap + 1 > ((1 << self.bits) * 5) // 8:  # the scan's load limit (_scan_chunk)
            self.bits += 1
        self.table = np.full(1 << self.bits, EMPTY, np.uint64)
        self.st = np.array([0, 0, 0, -1], np.int64)  # ntok, nlines, nent, eos entry
        self.parts = _parts.split_parts(threads)  # ranges scanned at once (feed)
        self._helpers = []  # the scanners of ranges 1.. of a block, reused from block to block

    def _grow(self, room):
        """Room for one more token, line end and entry, and ``room`` more entry bytes."""
        self._reserve(1, 1, 0, room)

    def _state(self):
        return (self.prefix, self.eos, self.eos_h, self.st, self.table, self.bits, self.e_hash,
                self.e_count, self.e_label, self.e_off, self.pool, self.tok, self.line_end)

    def _reserve(self, tok, lines, ent, nbytes):
        """Room for ``tok`` more tokens, ``lines`` line ends, ``ent`` entries of ``nbytes`` bytes."""
        ntok, nlines, nent = int(self.st[0]), int(self.st[1]), int(self.st[2])
        if ntok + tok > self.tok.size:
            self.tok = _resize(self.tok, max(ntok + tok, self.tok.size * 3 // 2 + 16))
        if nlines + lines > self.line_end.size:
            self.line_end = _resize(self.line_end, max(nlines + lines, self.line_end.size * 3 // 2 + 16))
        if nent + ent + 1 > self.e_hash.size:
            cap = max(nent + ent + 1, self.e_hash.size * 3 // 2 + 16)
            self.e_hash, self.e_count = _resize(self.e_hash, cap), _resize(self.e_count, cap)
            self.e_label, self.e_off = _resize(self.e_label, cap), _resize(self.e_off, cap + 1)
        bits = self.bits
        while nent + ent + 1 > ((1 << bits) * 5) // 8:
            bits += 1
        if bits != self.bits:
            self.table, self.bits = _fill_table(self.e_hash, nent, bits), bits
        if self.e_off[nent] + nbytes > self.pool.size:
            self.pool = _resize(self.pool, max(2 * self.pool.size, int(self.e_off[nent]) + nbytes))

    def _reset(self):
        """Forget everything scanned; keep the buffers (a helper between two blocks)."""
        self.st[:] = (0, 0, 0, -1)
        self.table.fill(EMPTY)

    def _scan(self, data):
        """The serial scan of ``data`` (read-only uint8, whole lines but maybe the last)."""
        i = 0
        while True:
            i, need = _scan_chunk(data, i, *self._state())
            if not need:
                break
            # room for the pending token (bytes up to the next separator)
            self._grow(max(_token_end(data, i) - i, self.eos.size))

    def _merge(self, part):
        """Append a helper's scan of the text that follows this one's (see :meth:`feed`)."""
        pn, ptok, plines = int(part.st[2]), int(part.st[0]), int(part.st[1])
        self._reserve(ptok, plines, pn, int(part.e_off[pn]))
        remap = np.empty(pn, np.int32)
        _parts.merge_entries(self.st, self.table, self.bits, self.e_hash, self.e_count, self.e_label,
                             self.e_off, self.pool, part.e_hash, part.e_count, part.e_label,
                             part.e_off, part.pool, pn, remap)
        ntok, nlines = int(self.st[0]), int(self.st[1])
        _parts.remap_tokens(remap, part.tok, ptok, self.tok, ntok)
        np.add(part.line_end[:plines], ntok, out=self.line_end[nlines:nlines + plines])
        self.st[0] += ptok
        self.st[1] += plines
        if self.st[3] < 0 <= part.st[3]:
            self.st[3] = remap[part.st[3]]

    def _scan_block(self, data, cuts):
        """Ranges ``cuts[k]:cuts[k + 1]`` of ``data`` at once: the first here, the others in
        worker threads (the kernels release the GIL), then merged in text order."""
        ranges = [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        if len(ranges) < 2:
            self._scan(data[cuts[0]:cuts[-1]])
            return
        while len(self._helpers) < len(ranges) - 1:
            cap = _parts.SPLIT_BLOCK_BYTES // max(self.parts, 1)
            self._helpers.append(Scanner(self.prefix, self.eos, tok_capacity=cap // 4 + 16,
                                         line_capacity=cap // 64 + 16))
        errors = []

        def work(helper, a, b):
            try:
                helper._reset()
                helper._scan(data[a:b])
            except BaseException as e:  # noqa: BLE001 -- raised again by the caller
                errors.append(e)

        threads = [threading.Thread(target=work, args=(h, a, b), daemon=True)
                   for h, (a, b) in zip(self._helpers, ranges[1:])]
        for t in threads:
            t.start()
        try:
            self._scan(data[ranges[0][0]:ranges[0][1]])
        finally:
            for t in threads:
                t.join()
        if errors:
            raise errors[0]
        for h in self._helpers[:len(ranges) - 1]:
            self._merge(h)

    def feed(self, data, final):
        """Scan ``data`` (read-only uint8); ``final``: it is the last piece of the text.

        With more than one core and from SPLIT_MIN_BYTES of text on, the text goes in blocks of
        about SPLIT_BLOCK_BYTES (:mod:`~fastembed.text.scan_parts`), each cut at line ends into one
        range per core: the caller scans the first range into this scanner while worker threads
        scan the others, each into a scanner of its own; then, serially and in text order, each worker's entries are looked
        up in this scanner's table (counts added, new ones numbered in their order of first
        appearance) and its token ids remapped and appended. A token never spans a line end and
        the scan carries nothing from one line to the next but the table, so the result is the
        serial scan's, entry numbering included. The workers' buffers are bounded by the block.
        """
        n = int(data.size)
        parts = self.parts
        pos = 0
        while parts > 1 and n - pos >= max(_parts.SPLIT_MIN_BYTES, 1):
            block = _parts.SPLIT_BLOCK_BYTES
            end = n if n - pos <= block else int(_parts.next_line_start(data, pos + block))
            cuts = [pos] + [min(int(_parts.next_line_start(data, pos + k * (end - pos) // parts)), end)
                            for k in range(1, parts)] + [end]
            self._scan_block(data, cuts)
            pos = end
        if pos < n:
            self._scan(data[pos:] if pos else data)
        if final and n > 0 and data[n - 1] != NEWLINE:
            self._grow(self.eos.size)
            _close_last_line(data, *self._state())

    def take_tokens(self):
        """``(tok, line_end)`` of the pieces fed since the last call, exactly sized; then forgets them.

        The arrays returned are the scanner's own buffers, trimmed (NumPy-owned, no views); the
        scanner starts new ones.
        """
        ntok, nlines = int(self.st[0]), int(self.st[1])
        tok, line_end = _resize(self.tok, ntok), _resize(self.line_end, nlines)
        self.tok = np.empty(max(ntok, 16), np.int32)
        self.line_end = np.empty(max(nlines, 16), np.int64)
        self.st[0] = self.st[1] = 0
        return tok, line_end

    def entries(self):
        """``(e_hash, e_count, e_label, e_off, pool)``, exactly sized; the scan is over."""
        nent = int(self.st[2])
        self.table = None
        self._helpers = []
        return (_resize(self.e_hash, nent), _resize(self.e_count, nent), _resize(self.e_label, nent),
                _resize(self.e_off, nent + 1), _resize(self.pool, int(self.e_off[nent])))


def _token_end(data, i):
    """The first separator at or after byte ``i`` of ``data`` (or its end): where the token
    that did not fit ends. NumPy on growing windows: it runs only when a buffer grows, a few
    times per scan, and a kernel for it cost a process its load from Numba's cache (3-4 ms of
    CPU measured in a TREC-6 training)."""
    n = int(data.size)
    width = 64
    while i < n:
        window = data[i:i + width]
        hits = np.flatnonzero(IS_SEPARATOR[window])
        if hits.size:
            return i + int(hits[0])
        i += int(window.size)
        width *= 2
    return n


def gather_entries(pool, off, sel):
    """Concatenate the bytes of entries ``sel`` (int64[m]) into a new pool.

    Returns ``(pool2 uint8[...], off2 int64[m + 1])``.
    """
    off2 = np.zeros(sel.size + 1, np.int64)
    np.cumsum(off[sel + 1] - off[sel], out=off2[1:])
    pool2 = np.empty(int(off2[-1]), np.uint8)
    _gather_bytes(pool, off, sel, off2, pool2)
    return pool2, off2


@njit(**BYTES)
def _gather_bytes(pool, off, sel, off2, pool2):
    """The copy of :func:`gather_entries`, into arrays sized by the caller: allocating them here
    (NumPy's allocation and its error messages) made the kernel's bitcode 25.5 kB instead of
    12.4 kB, which a process parses when it loads the kernel from Numba's cache."""
    for j in range(sel.size):
        e = sel[j]
        p = off[e]
        q = off2[j]
        for k in range(off[e + 1] - p):
            pool2[q + k] = pool[p + k]


