"""Plain-Python reference of fastText's supervised input pipeline (tests only).

Written from fastText's ``src/dictionary.cc`` rules, deliberately naive: a
character-by-character ``readWord`` state machine, a dict of counts, a stable
sort, and ``getLine`` per line.  It follows the same documented deviations as
:mod:`fastembed.text` (a final line without newline gets ``</s>`` in its bag
but not in the counts; a literal ``</s>`` does not split a line; min counts
below 1 act as 1).

Rows: :meth:`RefDict.get_line` and :meth:`RefDict.word_rows` give fastText's
hashed rows (``nwords + bucket``); :meth:`RefDict.final` maps them through the
n-gram row map as a dict: buckets numbered by first appearance in the training
bags (labelled lines), those used fewer than ``min_count_ngram`` times dropped,
every other bucket to the zero row ``nwords + n_kept``.
"""

from __future__ import annotations

SEPARATORS = frozenset(b" \n\r\t\v\f\0")
EOS = b"</s>"
NEWLINE_EOS = object()  # the </s> that readWord makes of a '\n'


def fnv1a(b: bytes) -> int:
    """fastText's hash: FNV-1a 32-bit over bytes taken as signed chars."""
    h = 2166136261
    for c in b:
        if c >= 128:
            c = (c - 256) & 0xFFFFFFFF  # int8 sign-extended to uint32
        h ^= c
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def read_words(data: bytes):
    """fastText's readWord over a whole stream, token by token.

    Yields ``bytes`` tokens and ``NEWLINE_EOS`` for every ``'\\n'``.
    """
    word = bytearray()
    i = 0
    n = len(data)
    while i < n:
        c = data[i]
        i += 1
        if c in SEPARATORS:
            if not word:
                if c == 0x0A:
                    yield NEWLINE_EOS
                continue
            yield bytes(word)
            word.clear()
            if c == 0x0A:
                i -= 1  # sungetc: the newline is read again as </s>
            continue
        word.append(c)
    if word:
        yield bytes(word)


def split_lines(data: bytes):
    """Lines of tokens (``bytes``), each closed by ``EOS``.

    A final line without newline exists iff a byte follows the last newline;
    it is closed by ``EOS`` as well.  Returns ``(lines, counted)`` where
    ``counted[i]`` tells whether line i's EOS came from a real newline.
    """
    lines, counted, cur = [], [], []
    for t in read_words(data):
        if t is NEWLINE_EOS:
            cur.append(EOS)
            lines.append(cur)
            counted.append(True)
            cur = []
        else:
            cur.append(t)
    if data and data[-1:] != b"\n":
        cur.append(EOS)
        lines.append(cur)
        counted.append(False)
    return lines, counted


class RefDict:
    def __init__(self, data: bytes, label_prefix=b"__label__", min_count=1, min_count_label=1,
                 word_ngrams=1, bucket=2_000_000, minn=0, maxn=0, min_count_ngram=1):
        self.prefix = label_prefix
        counts: dict[bytes, int] = {}
        order: list[bytes] = []
        ntokens = 0
        for t in read_words(data):
            if t is NEWLINE_EOS:
                t = EOS
            if t not in counts:
                counts[t] = 0
                order.append(t)
            counts[t] += 1
            ntokens += 1
        self.ntokens = ntokens
        words = [w for w in order if not self.is_label(w) and counts[w] >= max(min_count, 1)]
        labels = [w for w in order if self.is_label(w) and counts[w] >= max(min_count_label, 1)]
        words.sort(key=lambda w: -counts[w])  # stable: ties by first appearance
        labels.sort(key=lambda w: -counts[w])
        self.words, self.labels = words, labels
        self.word_counts = [counts[w] for w in words]
        self.label_counts = [counts[w] for w in labels]
        self.word2id = {w: i for i, w in enumerate(words)}
        self.label2id = {w: i for i, w in enumerate(labels)}
        self.word_ngrams = word_ngrams
        self.maxn, self.minn = maxn, minn
        self.bucket = 0 if (word_ngrams <= 1 and maxn == 0) else bucket
        self.nwords = len(words)
        self.bucket_ids = []
        self.bucket_row = {}
        if self.labels:
            self._number_buckets(data, min_count_ngram)

    def _number_buckets(self, data, min_count_ngram):
        seen: dict[int, int] = {}
        for rows, _, _ in self.encode(data, keep_all=False, hashed=True)[0]:
            for r in rows:
                if r >= self.nwords:
                    seen[r - self.nwords] = seen.get(r - self.nwords, 0) + 1
        self.bucket_ids = [b for b, c in seen.items() if c >= max(min_count_ngram, 1)]  # dicts keep insertion order
        self.bucket_row = {b: self.nwords + j for j, b in enumerate(self.bucket_ids)}

    @property
    def unseen_row(self) -> int:
        return self.nwords + len(self.bucket_ids)

    def final(self, rows: list[int]) -> list[int]:
        """Hashed rows to final rows, through the row map."""
        return [r if r < self.nwords else self.bucket_row.get(r - self.nwords, self.unseen_row) for r in rows]

    def is_label(self, tok: bytes) -> bool:
        return tok.startswith(self.prefix)

    def subwords(self, tok: bytes) -> list[int]:
        """computeSubwords over '<' + tok + '>' (UTF-8 aware)."""
        if self.maxn <= 0 or self.bucket == 0:
            return []
        w = b"<" + tok + b">"
        out = []
        for i in range(len(w)):
            if (w[i] & 0xC0) == 0x80:
                continue
            j, n, ngram = i, 1, b""
            while j < len(w) and n <= self.maxn:
                ngram += w[j : j + 1]
                j += 1
                while j < len(w) and (w[j] & 0xC0) == 0x80:
                    ngram += w[j : j + 1]
                    j += 1
                if n >= self.minn and not (n == 1 and (i == 0 or j == len(w))):
                    out.append(self.nwords + fnv1a(ngram) % self.bucket)
                n += 1
        return out

    def word_rows(self, tok: bytes) -> list[int]:
        """addSubwords: id (if known) + char n-grams (not for </s>)."""
        wid = self.word2id.get(tok, -1)
        rows = [wid] if wid >= 0 else []
        if tok != EOS:
            rows += self.subwords(tok)
        return rows

    def get_line(self, tokens: list[bytes]):
        """Supervised getLine: (rows, labels, ntokens)."""
        rows, labels, hashes = [], [], []
        for t in tokens:
            if self.is_label(t):
                if t in self.label2id:
                    labels.append(self.label2id[t])
            else:
                rows += self.word_rows(t)
                hashes.append(fnv1a(t))
        if self.bucket > 0:
            for i in range(len(hashes)):
                h = hashes[i] if hashes[i] < 2**31 else hashes[i] - 2**32  # int32
                h &= 0xFFFFFFFFFFFFFFFF  # sign-extended to uint64
                for j in range(i + 1, min(len(hashes), i + self.word_ngrams)):
                    hj = hashes[j] if hashes[j] < 2**31 else hashes[j] - 2**32
                    h = (h * 116049371 + (hj & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
                    rows.append(self.nwords + h % self.bucket)
        return rows, labels, len(tokens)

    def encode(self, data: bytes, keep_all: bool, hashed: bool = False):
        """List of (rows, labels, ntokens) per kept line, and the skipped count.

        Final rows, or fastText's hashed rows with ``hashed=True``.
        """
        lines, _ = split_lines(data)
        out, skipped = [], 0
        for toks in lines:
            rows, labels, nt = self.get_line(toks)
            if keep_all or labels:
                out.append((rows if hashed else self.final(rows), labels, nt))
            else:
                skipped += 1
        return out, skipped
