"""Cut Numba's first-call cost: its BLAS probe imports all of ``scipy.linalg`` (0.3 s here).

The first time Numba compiles or loads a cached kernel in a process, it imports its NumPy
support, whose module ``numba.np.arraymath`` probes for BLAS by importing
``scipy.linalg.cython_blas``; with SciPy installed that pulls in the whole of ``scipy.linalg``,
about 0.3 s on this machine. fastembed's kernels never call BLAS, and on small corpora that
0.3 s is longer than training, so we run Numba's registry set-up once with that import
refused, then restore the import and record the probe's answer ourselves. The probe only
chooses how ``np.correlate``/``np.convolve`` compile; ``np.dot`` and ``np.linalg`` check BLAS
again when they compile, so nobody else's Numba code changes behaviour.

Anything unexpected (another Numba version, arraymath already imported) leaves Numba alone.
"""

import importlib.util
import sys


def prepare():
    """Run Numba's lazy registry set-up without the ``scipy.linalg`` import. Idempotent."""
    if "numba.np.arraymath" in sys.modules:
        return
    blas = "scipy.linalg.cython_blas"
    had = blas in sys.modules
    saved = sys.modules.get(blas)
    try:
        from numba.core.registry import cpu_target

        sys.modules[blas] = None  # makes `import scipy.linalg.cython_blas` raise ImportError
        cpu_target.target_context.refresh()
    except Exception:  # noqa: BLE001 -- an optimisation only; Numba works without it
        pass
    finally:
        if had:
            sys.modules[blas] = saved
        else:
            sys.modules.pop(blas, None)
    arraymath = sys.modules.get("numba.np.arraymath")
    if arraymath is not None and hasattr(arraymath, "_HAVE_BLAS"):
        arraymath._HAVE_BLAS = importlib.util.find_spec("scipy") is not None
