"""The distributions, built with ``python -m build`` and installed as a user would install them.

Whatever way the package is installed (a wheel, the wheel built from the sdist, ``pip install
.``, ``pip install -e .``), ``fastembed train`` with no corpus must find the bundled TREC-6
corpus from any working directory, and ``python -m fastembed`` must work like ``fastembed``.

The builds run on a copy of the working tree, without build isolation (no download, and no
``build/`` or ``*.egg-info`` left in the repository). Each install goes into a fresh virtual
environment with ``--no-deps``; numba, NumPy, SciPy, click and pip come from the environment
running the tests through a ``.pth`` file that lists their folders. (``--system-site-packages``
would not do: inside a virtual environment, as in CI, it exposes the base interpreter's
packages, not this environment's.) A ``.pth`` line only appends its folder to ``sys.path``, so
the editable install of the repository that may sit in that folder is not activated, and the
installed copy comes first; each test asserts that ``fastembed`` is imported from it.
"""

import email.parser
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import fastembed

pytest.importorskip("build")

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "numba-fastembed"
_DIST_INFO = f"numba_fastembed-{fastembed.__version__}.dist-info"
CORPUS_FILES = ["trec6.train.txt", "trec6.test.txt", "README.md"]
_NOT_SOURCE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", ".hypothesis", "*.fe")
# The environment of every command: nothing that points Python or fastembed at the repository.
_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "FASTEMBED_DATA")}
_WHERE = "import fastembed, sysconfig; print(fastembed.__file__); print(sysconfig.get_path('purelib'))"


def _run(*cmd, cwd, input=None):
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_ENV, input=input,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """The sdist, the wheel built from it, and the wheel built from the tree (``pip install .``)."""
    tmp = tmp_path_factory.mktemp("dists")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    # without --sdist/--wheel, build makes the sdist, then the wheel from the unpacked sdist
    _run(sys.executable, "-m", "build", "--no-isolation", "-o", tmp / "via_sdist", source, cwd=tmp)
    _run(sys.executable, "-m", "build", "--no-isolation", "--wheel", "-o", tmp / "direct",
         source, cwd=tmp)
    (sdist,) = (tmp / "via_sdist").glob("*.tar.gz")
    (wheel,) = (tmp / "via_sdist").glob("*.whl")
    (direct_wheel,) = (tmp / "direct").glob("*.whl")
    return {"source": source, "sdist": sdist, "wheel": wheel, "direct_wheel": direct_wheel}


def _fresh_venv(path):
    """A virtual environment that borrows the dependencies, but not fastembed, from this one."""
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(path)
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                        cwd=path).stdout.strip())
    folders = dict.fromkeys(str(Path(importlib.util.find_spec(m).origin).parents[1])
                            for m in ["numba", "llvmlite", "numpy", "scipy", "click", "pip", "setuptools"])
    (purelib / "_test_dependencies.pth").write_text("\n".join(folders) + "\n")
    return python


def _pip_install(python, *what, cwd):
    # --ignore-installed: this environment's own fastembed, visible through the .pth, is
    # neither a reason to skip the install nor something pip may uninstall
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", "--no-build-isolation",
         "--ignore-installed", "--quiet", *what, cwd=cwd)


def _where(python, cwd):
    """Where fastembed is imported from, and the environment's site-packages."""
    module, purelib = _run(python, "-c", _WHERE, cwd=cwd).stdout.split("\n")[:2]
    return Path(module), Path(purelib)


def _bundled_corpus(python, cwd):
    code = "from fastembed.cli import bundled_corpus; print(*bundled_corpus(), sep='\\n')"
    return [Path(p) for p in _run(python, "-c", code, cwd=cwd).stdout.split()]


def _wheel_files(wheel):
    with zipfile.ZipFile(wheel) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_sdist_holds_the_sources_the_corpus_the_tests_and_the_licence(dists):
    with tarfile.open(dists["sdist"]) as tar:
        top = tar.getnames()[0].split("/")[0]
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        corpus = {f: tar.extractfile(f"{top}/data/{f}").read() for f in CORPUS_FILES}
    assert top == f"numba_fastembed-{fastembed.__version__}"
    source = dists["source"]
    expected = {p.relative_to(source).as_posix()
                for folder in ["fastembed", "data", "tests"] for p in (source / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    expected |= {"LICENSE", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in"}
    assert expected <= names, sorted(expected - names)
    assert corpus == {f: (ROOT / "data" / f).read_bytes() for f in CORPUS_FILES}


def test_wheels_carry_the_corpus_inside_the_package(dists):
    wheel, direct = _wheel_files(dists["wheel"]), _wheel_files(dists["direct_wheel"])
    assert sorted(wheel) == sorted(direct)  # pip install . and the sdist's wheel hold the same
    for f in CORPUS_FILES:
        assert wheel[f"fastembed/_data/{f}"] == (ROOT / "data" / f).read_bytes()
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "fastembed").rglob("*.py")}
    assert modules | {"fastembed/py.typed"} <= set(wheel)
    # nothing outside the package (no top-level data/ in site-packages) but the metadata
    assert {n.split("/")[0] for n in wheel} == {"fastembed", _DIST_INFO}


def test_metadata_names_the_distribution_and_is_complete(dists):
    files = _wheel_files(dists["wheel"])
    info = _DIST_INFO
    meta = email.parser.Parser().parsestr(files[f"{info}/METADATA"].decode())
    assert meta["Name"] == DISTRIBUTION and meta["Version"] == fastembed.__version__
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"
    assert files[f"{info}/licenses/LICENSE"] == (ROOT / "LICENSE").read_bytes()
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert {u.split(",")[0] for u in meta.get_all("Project-URL")} >= {"Homepage", "Source", "Issues"}
    assert {r.split(">")[0] for r in meta.get_all("Requires-Dist") if "extra" not in r} == {
        "numba", "numpy", "scipy", "click"}
    assert "fastembed = fastembed.cli:main" in files[f"{info}/entry_points.txt"].decode()


def test_installed_wheel_trains_on_the_bundled_corpus_from_any_directory(dists, tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    work = tmp_path / "elsewhere"
    work.mkdir()
    _pip_install(python, dists["wheel"], cwd=work)
    module, purelib = _where(python, work)
    assert module.is_relative_to(purelib), (module, purelib)
    assert _bundled_corpus(python, work) == [
        purelib / "fastembed" / "_data" / f for f in ["trec6.train.txt", "trec6.test.txt"]]

    command = python.parent / ("fastembed.exe" if os.name == "nt" else "fastembed")
    _run(command, "train", "-q", "-o", "m.fe", "--threads", "1", cwd=work)
    assert (work / "m.fe").is_file()
    # predict the first 50 held-out questions: the model learned TREC-6 (P@1 0.92 on all 500)
    test_lines = (ROOT / "data" / "trec6.test.txt").read_text().splitlines()[:50]
    gold = [line.split(" ", 1)[0] for line in test_lines]
    questions = "".join(line.split(" ", 1)[1] + "\n" for line in test_lines)
    predicted = _run(command, "predict", "m.fe", "-", cwd=work, input=questions).stdout.split()
    assert len(predicted) == 50
    assert sum(p == g for p, g in zip(predicted, gold)) >= 40, list(zip(predicted, gold))

    help_text = _run(python, "-m", "fastembed", "--help", cwd=work).stdout
    assert help_text.startswith("Usage: fastembed") and "train" in help_text
    info = _run(python, "-m", "fastembed", "info", "m.fe", cwd=work).stdout
    assert info == _run(command, "info", "m.fe", cwd=work).stdout
    assert "labels         6: __label__" in info


@pytest.mark.parametrize("editable", [False, True], ids=["pip-install-dot", "pip-install-e-dot"])
def test_install_from_the_source_tree_finds_the_corpus(dists, tmp_path, editable):
    python = _fresh_venv(tmp_path / "venv")
    source = dists["source"]
    _pip_install(python, *(["-e"] if editable else []), source, cwd=tmp_path)
    module, purelib = _where(python, tmp_path)
    # an editable install runs the tree's own files and reads its data/; a regular one, its copy
    home, data = (source, source / "data") if editable else (purelib, purelib / "fastembed" / "_data")
    assert module == home / "fastembed" / "__init__.py"
    assert _bundled_corpus(python, tmp_path) == [data / "trec6.train.txt", data / "trec6.test.txt"]
