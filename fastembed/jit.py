"""The one place Numba is configured: start-up fix, decorator flag sets, prefetch.

Every kernel module imports ``njit`` and its flag set from here, so that the start-up fix
below runs before any kernel compiles or loads, and so that the flags are written once:

* ``SERIAL``    -- a kernel on one core, releasing the GIL (``cache=True, nogil=True``).
* ``PARALLEL``  -- the same with ``parallel=True``: it wakes Numba's thread team, so it is
  only for work large enough to pay for that (tens of microseconds at least).
* ``INLINE``    -- a helper inlined into its callers (no call, and no separate compile).
* ``OUTLINE``   -- a helper never inlined (the row update rules: one copy of the code).
* ``BYTES``     -- byte-scanning and float-math kernels: NumPy's error model (no
  ``ZeroDivisionError`` checks in inner loops) and no bounds checks, whatever
  ``NUMBA_BOUNDSCHECK`` says.
* ``REDUCE``    -- ``BYTES`` plus the fast-math flags that let LLVM vectorise a float sum
  (reassociation, fused multiply-add; a 100-float dot: 85 ns -> 9.5 ns here), and no other
  fast-math assumption (NaN and inf still work). Results then depend on the vector width, not
  on data order. For small reduction helpers (``loss.dot_row``), which must be called, not
  inlined by Numba (``inline="always"`` would compile them with their caller's flags), and for
  whole kernels made of dot products (the word-vector trainer).

Start-up
--------
Numba's own start-up was most of a short command's time (``fastembed train`` on TREC-6: about
0.5 s of a 1.1-s process). Three parts of it are cut here:

* **The registry set-up on a cache load.** Numba's ``Cache.load_overload`` runs the target
  context's ``refresh()`` before loading a cached kernel: it imports and installs every lowering
  registry Numba has (its NumPy support, typed containers, random, linear algebra, ...), 0.36-0.49
  s here, which only compiling needs (Numba's compiler runs ``refresh()`` itself). Machine code
  loaded from the cache needs only the symbols it links against: Numba's C helpers, added when
  the target context is made, and the NRT's (``rtsys.initialize``). Every kernel made by
  :func:`njit` loads through :class:`_LoadingCache`, which does just that; the full set-up
  (:func:`prepare`) runs when a load misses and a compile follows.
* **SciPy's linear algebra at that set-up.** Numba's NumPy support (``numba.np.arraymath``)
  probes for BLAS by importing ``scipy.linalg.cython_blas``, which pulls in the whole of
  ``scipy.linalg`` (0.3 s here). fastembed's kernels never call BLAS, so :func:`prepare` runs
  the set-up with that import refused, then restores the import and records the probe's answer
  itself. The probe only chooses how ``np.correlate``/``np.convolve`` compile; ``np.dot`` and
  ``np.linalg`` check BLAS again when they compile, so nobody else's Numba code changes
  behaviour.
* **Imports Numba makes for others.** Numba's ``__init__`` imports ``scipy`` only to check its
  version (20 ms), and ``coverage`` when it is installed (``numba.misc.coverage_support``, 30-60
  ms), only to report the lines it compiles to a coverage run in progress. A run in progress
  has imported ``coverage`` already, and is left alone; otherwise both imports are refused while
  Numba loads.

Anything unexpected leaves Numba to itself: :func:`prepare` gives up quietly (the compiler then
runs the set-up on its own), and the loader falls back to Numba's own ``load_overload`` when
Numba's internals are not the ones it calls.

Prefetch
--------
:func:`prefetch_row` and :func:`prefetch_distance` let kernels request rows ahead of use.
Under ``NUMBA_DISABLE_JIT=1`` (coverage runs) they are plain Python no-ops.
"""

import contextlib
import importlib.util
import os
import sys


@contextlib.contextmanager
def _imports_refused(*names):
    """``import name`` raises ImportError inside the block, for the names not imported yet."""
    refused = [name for name in names if name not in sys.modules]
    try:
        for name in refused:
            sys.modules[name] = None
        yield
    finally:
        for name in refused:
            sys.modules.pop(name, None)


def prepare():
    """Run Numba's registry set-up (needed to compile) without the ``scipy.linalg`` import.
    Idempotent."""
    if "numba.np.arraymath" in sys.modules:
        return
    try:
        with _imports_refused("scipy", "scipy.linalg.cython_blas", "coverage"):
            from numba.core.registry import cpu_target

            cpu_target.target_context.refresh()
    except Exception:  # noqa: BLE001 -- an optimisation only; Numba works without it
        pass
    arraymath = sys.modules.get("numba.np.arraymath")
    if arraymath is not None and hasattr(arraymath, "_HAVE_BLAS"):
        arraymath._HAVE_BLAS = importlib.util.find_spec("scipy") is not None


# OpenMP threads that wait for the next parallel region sleep instead of spinning (a user's
# own setting wins). On this 2-core machine at load 16-25, one epoch of deterministic training
# on SST-2 (two parallel regions per mini-batch) took 25.1 s with libgomp's default spinning,
# 2.2 s passive (hogwild: about 1 s): spinning threads took the cores from the ones with work.
# libgomp reads it when Numba first loads it, at the first parallel region.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

with _imports_refused("scipy", "coverage"):  # before any kernel module imports Numba
    import numba  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import prange, types  # noqa: E402
from numba.core import cgutils  # noqa: E402
from numba.core.caching import FunctionCache  # noqa: E402
from numba.core.runtime import rtsys  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

__all__ = ["BYTES", "INLINE", "OUTLINE", "PARALLEL", "REDUCE", "SERIAL", "njit", "prange", "thread_count",
           "prefetch_distance", "prefetch_row"]


class _LoadingCache(FunctionCache):
    """Numba's on-disk cache of one kernel, loading without the registry set-up (see Start-up
    above); a miss runs :func:`prepare` before Numba compiles."""

    def load_overload(self, sig, target_context):  # pragma: no cover -- JIT only (tests/test_jit.py)
        if not _LOADER_KNOWN:
            return super().load_overload(sig, target_context)
        rtsys.initialize(target_context)  # the NRT's symbols, which loaded code links against
        with self._guard_against_spurious_io_errors():
            loaded = self._load_overload(sig, target_context)
        if loaded is None:
            prepare()
        return loaded


# the Numba internals the loader calls (those of Numba 0.68.1, with which it was measured)
_LOADER_KNOWN = all(hasattr(FunctionCache, name) for name in ("_load_overload", "_guard_against_spurious_io_errors"))


def njit(**flags):
    """``numba.njit(**flags)``; a cached kernel loads through :class:`_LoadingCache`."""
    # cache=False: Numba's own cache object (60 us to make) would only be replaced below
    decorate = numba.njit(**dict(flags, cache=False))

    def kernel(func):
        dispatcher = decorate(func)
        if flags.get("cache") and hasattr(dispatcher, "_cache"):  # not under NUMBA_DISABLE_JIT
            dispatcher._cache = _LoadingCache(dispatcher.py_func)
        return dispatcher

    return kernel


SERIAL = dict(cache=True, nogil=True)
PARALLEL = dict(SERIAL, parallel=True)
INLINE = dict(SERIAL, inline="always")
OUTLINE = dict(SERIAL, inline="never")
BYTES = dict(SERIAL, boundscheck=False, error_model="numpy")
REDUCE = dict(BYTES, fastmath={"reassoc", "contract", "nsz"})

# Software prefetch: the row ``prefetch_distance(table)`` positions ahead is
# requested while the current one is summed (random rows of a large table are
# cache misses that the hardware prefetcher cannot guess).  The distance is
# about PREFETCH_BYTES of rows ahead, clamped to [PREFETCH_MIN, PREFETCH_MAX]
# rows (tuned on 1M-row float32 tables, dims 16..300, 2 threads: best
# distances were ~96, 48, 32 and 16 rows for dims 16, 64, 128 and 300).
PREFETCH_BYTES = 16384
PREFETCH_MIN = 16
PREFETCH_MAX = 96
CACHE_LINE = 64


@intrinsic
def _prefetch_line(typingctx, arr, i, j):
    """Hint the CPU to load the cache line holding ``arr[i, j]`` (2-D array).

    Compiles to ``llvm.prefetch`` (read, high locality, data cache): no
    fault, no effect on results, a no-op on targets without prefetch.  No
    bounds check: the address is only computed, never dereferenced.
    """
    if not isinstance(arr, types.Array) or arr.ndim != 2:
        return None
    if not isinstance(i, types.Integer) or not isinstance(j, types.Integer):
        return None
    sig = types.void(arr, i, j)

    def codegen(context, builder, signature, args):
        aryty, ity, jty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        iv = context.cast(builder, args[1], ity, types.intp)
        jv = context.cast(builder, args[2], jty, types.intp)
        ptr = cgutils.get_item_pointer2(
            context, builder, ary.data,
            cgutils.unpack_tuple(builder, ary.shape),
            cgutils.unpack_tuple(builder, ary.strides),
            aryty.layout, [iv, jv], wraparound=False, boundscheck=False,
        )
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [i8p, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(**INLINE)
def prefetch_row(arr, i):  # pragma: no cover -- compiled only: the JIT-off run uses the no-op below
    """Prefetch every cache line of row ``i`` of the 2-D C-contiguous ``arr``."""
    dim = arr.shape[1]
    if dim > 0:
        step = max(1, CACHE_LINE // arr.itemsize)
        for j in range(0, dim, step):
            _prefetch_line(arr, i, j)
        _prefetch_line(arr, i, dim - 1)  # rows need not start on a line boundary


@njit(**INLINE)
def prefetch_distance(arr):
    """How many rows ahead to prefetch in a random walk over the rows of ``arr``."""
    row_bytes = max(arr.shape[1] * arr.itemsize, 1)
    return min(PREFETCH_MAX, max(PREFETCH_MIN, PREFETCH_BYTES // row_bytes))



if numba.config.DISABLE_JIT:  # pragma: no cover -- exercised by the NUMBA_DISABLE_JIT=1 run
    def prefetch_row(arr, i):  # noqa: F811 -- the intrinsic cannot run as Python
        """No-op: prefetching is only a hint."""


@contextlib.contextmanager
def thread_count(n):
    """Numba's parallel kernels of the calling thread use at most ``n`` threads inside the block.

    The setting belongs to the calling thread and outlives the call: a training with
    ``threads=1`` that set it and left it would keep that thread's later parallel work (batch
    prediction) on one thread. It is given back when the block ends."""
    before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)
