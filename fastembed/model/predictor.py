"""A model made ready to predict: one line at a time from any number of threads, or blocks of lines.

One line is one call of the compiled :func:`predict_line`, whose arguments are a
:class:`LineState` and the line. The state holds everything else the kernel reads -- the
vocabulary, the model's arrays, and the line's buffers -- as one Numba structref, which a call
unboxes as one pointer. Passed as the 15 arrays and integers they are made of, the same call
spent 755 ns unboxing them, against 229 ns for the structref (an empty kernel, timed with
``timeit`` on this machine); an empty line's whole call went from 2.0-2.8 us to 1.0 us.

Each thread that predicts gets its own state and result arrays (:meth:`Predictor.grow`): the
kernel releases the GIL, so two threads sharing a line's buffers would overwrite each other's
hashes, rows and top labels mid-call. Blocks of lines go through
:func:`fastembed.model.line_predict.predict_block` or the claim team, which give each thread
its own buffers.
"""

from __future__ import annotations

import functools
import threading

import numba
import numpy as np
from numba.core import types
from numba.experimental import structref

from fastembed.jit import BYTES, njit
from fastembed.model.line_predict import (
    POOLING_CODES,
    Classifier,
    line_buffers,
    line_ends,
    line_top_k,
    new_scratch,
    predict_block,
    worth_threads,
)
from fastembed.model.loss import LOSS_CODES
from fastembed.text.line import LineVocab

# Single-line buffers are first sized for lines of this many bytes, and grow for longer ones.
FIRST_LINE_BYTES = 4096


@structref.register
class LineStateType(types.StructRef):
    """The Numba type of :class:`LineState`: its fields' types, literal values made plain."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class LineState(structref.StructRefProxy):
    """What :func:`predict_line` reads besides the line: ``vocab`` (:class:`LineVocab`), ``clf``
    (:class:`Classifier`), ``buffers`` (:class:`LineBuffers` of a line of up to ``line_bytes``
    bytes), and ``top_ids``/``top_probs``, where a call leaves its result. Made by
    :func:`new_line_state`; Python only passes it back to the kernels."""


_FIELDS = ("vocab", "clf", "buffers", "line_bytes", "top_ids", "top_probs")
structref.define_constructor(LineState, LineStateType, list(_FIELDS))
structref.define_boxing(LineStateType, LineState)  # returned to Python as the proxy, attributes unexposed

if numba.config.DISABLE_JIT:  # pragma: no cover -- exercised by the NUMBA_DISABLE_JIT=1 run

    class LineState:  # noqa: F811 -- a structref proxy cannot be built by plain Python
        """Plain-Python stand-in: the kernels, run as Python, read the same attributes."""

        def __init__(self, *values):
            for name, value in zip(_FIELDS, values):
                setattr(self, name, value)


@njit(**BYTES)
def new_line_state(vocab, clf, n_bytes):
    """A :class:`LineState` for lines of up to ``n_bytes`` bytes, and its ``top_ids``/``top_probs``."""
    buffers, top_ids, top_probs = line_buffers(new_scratch(vocab, clf, n_bytes), clf)
    return LineState(vocab, clf, buffers, n_bytes, top_ids, top_probs), top_ids, top_probs


@njit(**BYTES)
def predict_line(state, k, threshold, line):
    """Top ``k`` labels of one line (bytes, no ``'\\n'``, at most ``state.line_bytes`` long) into
    ``state.top_ids``/``state.top_probs``; returns their count. ``k == 0`` stops at the hidden
    vector (:func:`line_hidden`). The line comes last so that the rest can be bound once."""
    return line_top_k(line, 0, len(line), state.vocab, state.clf, state.buffers, k, threshold, state.top_ids,
                      state.top_probs)


@njit(**BYTES)
def line_hidden(state, line):
    """The hidden vector of one line (a new array)."""
    predict_line(state, 0, 0.0, line)
    return state.buffers.hidden.copy()


def _entry_point(kernel, args):
    """The compiled entry point of ``kernel`` for the types of ``args``, or ``kernel`` itself.

    Calling it skips Numba's type dispatch; the caller must pass the same types every time
    (the entry point checks only the item size of arrays).
    """
    try:
        return kernel.overloads[tuple(kernel.typeof_pyval(a) for a in args)].entry_point
    except (AttributeError, KeyError):  # NUMBA_DISABLE_JIT=1: a plain function
        return kernel


class LineSlot:
    """One thread's state for single lines, and views of its result.

    Attributes
    ----------
    call : callable
        ``call(k, threshold, line)``: :func:`predict_line` on this slot's state, for a line of at
        most ``line_bytes`` bytes, ``k`` an int and ``threshold`` a float (the bound entry point
        takes no other types). Returns the count of labels in ``top_ids``/``top_probs``.
    top_ids, top_probs : ndarray
        Where ``call`` leaves its result.
    top_probs_1 : ndarray
        ``top_probs[:1]``, made once: copying a ready view is cheaper than slicing and copying.
    """

    __slots__ = ("state", "line_bytes", "call", "top_ids", "top_probs", "top_probs_1")

    def __init__(self, vocab, clf, n_bytes):
        self.state, self.top_ids, self.top_probs = new_line_state(vocab, clf, n_bytes)
        self.line_bytes = n_bytes
        self.top_probs_1 = self.top_probs[:1]
        self.call = None


class Predictor:
    """A model made ready to predict: the kernels' arguments, and each thread's :class:`LineSlot`.

    Parameters
    ----------
    vocab : LineVocab
    inp, out : float32 (n_rows, dim), (n_out, dim)
    idf : float32 (n_rows,) or None
    hs : (paths, codes, offsets) of the Huffman tree (empty unless ``loss == "hs"``)
    pooling, loss : str
    n_labels : int

    Attributes
    ----------
    local : threading.local
        ``local.slot`` is the calling thread's :class:`LineSlot`, once :meth:`grow` made it.
    """

    def __init__(self, vocab: LineVocab, inp, out, idf, hs, pooling, loss, n_labels):
        n_rows = vocab.unseen_row + 1
        if inp.shape[0] != n_rows or inp.shape[1] != out.shape[1]:
            raise ValueError(f"input matrix {inp.shape} does not fit {n_rows} rows / output {out.shape}")
        n_out = n_labels - 1 if loss == "hs" else n_labels
        if out.shape[0] != n_out or (loss == "hs" and len(hs[2]) != n_labels + 1):
            raise ValueError(f"output matrix {out.shape} does not fit {n_labels} labels ({loss})")
        if pooling == "tfidf":
            if idf is None or idf.shape != (n_rows,):
                raise ValueError("tfidf pooling needs one idf value per input row")
            idf = np.ascontiguousarray(idf, dtype=np.float32)
        else:
            idf = np.zeros(0, np.float32)
        self.vocab = vocab
        self.n_labels = n_labels
        self.clf = Classifier(np.ascontiguousarray(inp, dtype=np.float32),
                              np.ascontiguousarray(out, dtype=np.float32), idf,
                              *(np.ascontiguousarray(a) for a in hs), POOLING_CODES[pooling], LOSS_CODES[loss])
        # multiply-adds of the output layer per line, for the work estimate of a block
        self._line_macs = out.shape[0] * out.shape[1]
        self._entry = None
        self.local = threading.local()

    def grow(self, n_bytes) -> LineSlot:
        """The calling thread's :class:`LineSlot` for lines of ``n_bytes``: its own, made on its
        first use, or remade if its lines are shorter. Buffers grow at least twofold, never
        shrink, so a thread makes few of them.
        """
        old = getattr(self.local, "slot", None)
        if old is not None and n_bytes <= old.line_bytes:
            return old
        n_bytes = max(n_bytes, 2 * old.line_bytes if old is not None else 0, FIRST_LINE_BYTES)
        slot = LineSlot(self.vocab, self.clf, n_bytes)
        self._bind(slot)
        self.local.slot = slot
        return slot

    def _bind(self, slot):
        """Sets ``slot.call``: the compiled entry point bound to its state, once a first call
        through Numba's dispatcher (which compiles or loads the kernel) has found it."""
        if self._entry is not None:
            slot.call = functools.partial(self._entry, slot.state)
            return

        def first(k, threshold, line):
            count = predict_line(slot.state, k, threshold, line)
            self._entry = _entry_point(predict_line, (slot.state, k, threshold, line))
            self._bind(slot)
            return count

        slot.call = first

    def hidden(self, line: bytes) -> np.ndarray:
        """The hidden vector of one line (a copy)."""
        return line_hidden(self.grow(len(line)).state, line)

    def block(self, data: np.ndarray, k: int, threshold: float):
        """Top ``k`` of every line of ``data`` (read-only uint8): see :func:`predict_block`."""
        ends = line_ends(data)
        if not worth_threads(data.size, ends.size, self._line_macs):
            return predict_block(data, ends, self.vocab, self.clf, k, threshold)
        from fastembed.model.claim_team import TEAM  # imports this module

        return TEAM.run(data, ends, self.vocab, self.clf, k, threshold, numba.get_num_threads())


__all__ = ["FIRST_LINE_BYTES", "LineSlot", "LineState", "Predictor", "line_hidden", "new_line_state", "predict_line"]
