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

Start-up fix
------------
Cut Numba's first-call cost: its BLAS probe imports all of ``scipy.linalg`` (0.3 s here).

The first time Numba compiles or loads a cached kernel in a process, it imports its NumPy
support, whose module ``numba.np.arraymath`` probes for BLAS by importing
``scipy.linalg.cython_blas``; with SciPy installed that pulls in the whole of ``scipy.linalg``,
about 0.3 s on this machine. fastembed's kernels never call BLAS, and on small corpora that
0.3 s is longer than training, so we run Numba's registry set-up once with that import
refused, then restore the import and record the probe's answer ourselves. The probe only
chooses how ``np.correlate``/``np.convolve`` compile; ``np.dot`` and ``np.linalg`` check BLAS
again when they compile, so nobody else's Numba code changes behaviour.

Anything unexpected (another Numba version, arraymath already imported) leaves Numba alone.

Numba's ``__init__`` imports ``scipy`` too, only to check its version (20 ms): refused as well.
Numba also imports ``coverage`` when it is installed (``numba.misc.coverage_support``, 30-60 ms
here), only to report the lines it compiles to a coverage run in progress. A run in progress has
imported ``coverage`` already, and is left alone; otherwise the import is refused while Numba
loads, as for SciPy.

Prefetch
--------
:func:`prefetch_row` and :func:`prefetch_distance` let kernels request rows ahead of use.
Under ``NUMBA_DISABLE_JIT=1`` (coverage runs) they are plain Python no-ops.
"""

import contextlib
import importlib.util
import os
import sys

def prepare():
    """Run Numba's lazy registry set-up without the ``scipy.linalg`` import. Idempotent."""
    if "numba.np.arraymath" in sys.modules:
        return
    blas = "scipy.linalg.cython_blas"
    # `scipy` itself: numba imports it only to check its version (20 ms)
    refused = [name for name in ("scipy", blas, "coverage") if name not in sys.modules]
    try:
        for name in refused:
            sys.modules[name] = None  # makes `import name` raise ImportError
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    except Exception:  # noqa: BLE001 -- an optimisation only; Numba works without it
        pass
    finally:
        for name in refused:
            sys.modules.pop(name, None)
    arraymath = sys.modules.get("numba.np.arraymath")
    if arraymath is not None and hasattr(arraymath, "_HAVE_BLAS"):
        arraymath._HAVE_BLAS = importlib.util.find_spec("scipy") is not None


prepare()  # before numba.njit is used by any kernel module

# OpenMP threads that wait for the next parallel region sleep instead of spinning (a user's
# own setting wins). On this 2-core machine at load 16-25, one epoch of deterministic training
# on SST-2 (two parallel regions per mini-batch) took 25.1 s with libgomp's default spinning,
# 2.2 s passive (hogwild: about 1 s): spinning threads took the cores from the ones with work.
# libgomp reads it when Numba first loads it, at the first parallel region.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import njit, prange, types  # noqa: E402
from numba.core import cgutils  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

__all__ = ["BYTES", "INLINE", "OUTLINE", "PARALLEL", "REDUCE", "SERIAL", "njit", "prange", "thread_count",
           "prefetch_distance", "prefetch_row"]

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
