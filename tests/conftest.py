"""Shared fixtures: small real corpora (slices of the bundled TREC-6 corpus) in temp files.

Also two markers for the coverage run of ``.ci/run``, where ``NUMBA_DISABLE_JIT=1`` makes every
kernel plain Python: ``slow_without_jit`` (minutes that way, or a time budget pure Python
cannot use; what they cover is covered by smaller tests) and ``jit_only`` (they inspect compiled code); both are skipped there.
"""

from pathlib import Path

import numba
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def trec_train(tmp_path_factory):
    """The first 2,000 lines of the bundled TREC-6 training set."""
    lines = (DATA / "trec6.train.txt").read_bytes().splitlines(keepends=True)[:2000]
    path = tmp_path_factory.mktemp("corpus") / "trec_train.txt"
    path.write_bytes(b"".join(lines))
    return path


@pytest.fixture(scope="session")
def trec_test():
    return DATA / "trec6.test.txt"


_SKIPPED_WITHOUT_JIT = {
    "slow_without_jit": "minutes as pure Python, or a time budget (autotune's) that pure Python cannot "
                        "use as compiled code does; skipped when NUMBA_DISABLE_JIT=1",
    "jit_only": "tests the compiled kernels themselves (or a run whose course their float rounding "
                "decides); skipped when NUMBA_DISABLE_JIT=1",
}


# Without the JIT, kernels do their arithmetic on NumPy scalars, which warn where compiled code
# is silent: on the uint64 wrap-around that the hashes and splitmix64 rely on, and on the inf and
# nan of a diverging run (which the trainer detects and reports). Array operations word their
# warnings differently ("in multiply", not "in scalar multiply") and still show.
_SCALAR_WARNINGS = ("overflow", "invalid value", "divide by zero")


def pytest_configure(config):
    for name, text in _SKIPPED_WITHOUT_JIT.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    if numba.config.DISABLE_JIT:
        for what in _SCALAR_WARNINGS:
            config.addinivalue_line("filterwarnings",
                                    f"ignore:{what} encountered in scalar:RuntimeWarning")


# Whole modules of integration tests that train real models end to end in fresh environments: as
# pure Python they would take most of CI's time and cover nothing new. test_sklearn.py runs: it is
# the only test of fastembed/sklearn.py (199 statements, 98% covered by it), and took 87 s of CPU
# without the JIT (`NUMBA_DISABLE_JIT=1 coverage run -m pytest tests/test_sklearn.py`, issue 12).
_INTEGRATION_WITHOUT_JIT = ("test_packaging.py",)


def pytest_collection_modifyitems(config, items):
    if not numba.config.DISABLE_JIT:
        return
    for item in items:
        if item.path.name in _INTEGRATION_WITHOUT_JIT:
            item.add_marker(pytest.mark.skip(reason="end-to-end integration; skipped when NUMBA_DISABLE_JIT=1"))
        for name, text in _SKIPPED_WITHOUT_JIT.items():
            if name in item.keywords:
                item.add_marker(pytest.mark.skip(reason=text.split(";")[0]))
