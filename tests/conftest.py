"""Shared fixtures: small real corpora (slices of the bundled TREC-6 corpus) in temp files."""

from pathlib import Path

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
