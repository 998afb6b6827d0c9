"""The encoded corpus: CSR bags of input rows and CSR label lists, one example per kept line.

:class:`~fastembed.text.dictionary.Dictionary` (``encode``), :func:`~fastembed.text.build_corpus`
and the out-of-core encoder (:mod:`fastembed.text.out_of_core`, whose ``MappedCorpus`` maps the
same arrays from files) produce it; the trainers and ``Model.test`` read it.

Skipped lines (blank, or without a label known to the dictionary) are reported
with :func:`warnings.warn`, category :class:`SkippedLinesWarning` (a
``UserWarning``), once per call; the count is also in
:attr:`EncodedCorpus.n_skipped`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PER_LINE_CHUNK", "EncodedCorpus", "SkippedLinesWarning"]

# Lines read at a time by the passes over per-line arrays (8-16 MB of temporaries each).
PER_LINE_CHUNK = 1 << 20


class SkippedLinesWarning(UserWarning):
    """Some lines were skipped: blank, or without a label known to the dictionary."""


@dataclass
class EncodedCorpus:
    """Encoded lines: CSR bags of input rows and CSR label lists.

    Attributes
    ----------
    indices : int32[nnz]
        Input-table rows; bag ``b`` is ``indices[offsets[b]:offsets[b + 1]]``
        (values in ``[0, dictionary.n_rows)``).
    offsets : int64[n_lines + 1]
    label_indices : int32[n_label_ids]
        Label ids ``0..nlabels-1``; line ``b``'s labels are
        ``label_indices[label_offsets[b]:label_offsets[b + 1]]`` (in line
        order, duplicates kept as fastText keeps them).
    label_offsets : int64[n_lines + 1]
    ntokens : int32[n_lines]
        fastText's ``getLine`` count of each line: words (known or not),
        labels (known or not) and ``</s>``; feeds the linear lr schedule.
    n_skipped : int
        Lines dropped (blank or without a known label); 0 with
        ``keep_unlabelled=True``.
    kept_lines : int64[n_lines] or None
        The line of the source each example comes from, when lines were
        skipped; None when example ``b`` is line ``b`` (nothing skipped).
        Per-line data (sample weights) follows the examples through it.
    """

    indices: np.ndarray
    offsets: np.ndarray
    label_indices: np.ndarray
    label_offsets: np.ndarray
    ntokens: np.ndarray
    n_skipped: int = 0
    kept_lines: np.ndarray | None = None

    @property
    def n_lines(self) -> int:
        """Number of encoded lines (``len(offsets) - 1``)."""
        return len(self.offsets) - 1

    def __len__(self) -> int:
        return self.n_lines

    def bag(self, b: int) -> np.ndarray:
        """Rows of line ``b`` (a view)."""
        return self.indices[self.offsets[b] : self.offsets[b + 1]]

    def labels_of(self, b: int) -> np.ndarray:
        """Label ids of line ``b`` (a view)."""
        return self.label_indices[self.label_offsets[b] : self.label_offsets[b + 1]]

    def has_multi_label_line(self) -> bool:
        """Whether some line holds more than one label (what ``loss="auto"`` chooses by).

        Read :data:`PER_LINE_CHUNK` lines at a time: a whole ``np.diff`` of ``label_offsets``
        held 8 bytes a line in memory (68 MB for the 8.5M lines of a 10 GB corpus), and a
        mapped corpus's pages are released between chunks.
        """
        n, offsets = self.n_lines, self.label_offsets
        for a in range(0, n, PER_LINE_CHUNK):
            found = bool((np.diff(offsets[a:min(a + PER_LINE_CHUNK, n) + 1]) > 1).any())
            self.release_pages()
            if found:
                return True
        return False

    def total_tokens(self) -> int:
        """``ntokens.sum()``, read :data:`PER_LINE_CHUNK` lines at a time: a mapped corpus's
        whole ``ntokens`` file (4 bytes a line) stayed mapped until the trainer's first page
        release, and again after its last one (the run's ``tokens`` statistic)."""
        total = 0
        for a in range(0, self.n_lines, PER_LINE_CHUNK):
            total += int(self.ntokens[a:a + PER_LINE_CHUNK].sum(dtype=np.int64))
            self.release_pages()
        return total

    def release_pages(self) -> None:
        """Nothing to release in memory (a mapped corpus unmaps the pages it read)."""

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return sum(
            a.nbytes for a in (self.indices, self.offsets, self.label_indices, self.label_offsets, self.ntokens)
        )
