"""fastembed.jit's start-up: kernels loaded from Numba's cache skip Numba's registry set-up (only
compiling needs it) and compute what the compiled ones do."""

import json
import subprocess
import sys

import pytest

import fastembed

LINES = ["what is the capital of france ?", "who wrote hamlet ?", "how many feet are in a mile ?"]
SETTINGS = dict(threads=1, seed=3, epoch=2, verbose=0)  # one thread: the same model bit for bit
VECTORS = dict(model="skipgram", dim=8, min_count=2, threads=1, seed=3, epoch=1, verbose=0)

CHILD = f"""
import json, sys
import fastembed
model = fastembed.train_supervised(sys.argv[1], **{SETTINGS!r})
pairs = model.predict({LINES!r}, k=2)
vectors = fastembed.train_unsupervised(sys.argv[1], **{VECTORS!r})
print(json.dumps({{"labels": [list(x) for x, _ in pairs], "probs": [[float(p) for p in row] for _, row in pairs],
                  "vector": [float(x) for x in vectors.get_word_vector("capital")],
                  "registries": "numba.np.arraymath" in sys.modules, "scipy": "scipy.linalg" in sys.modules}}))
"""


@pytest.mark.jit_only
def test_a_process_that_only_loads_cached_kernels_skips_the_registry_setup_and_trains_the_same_model(trec_train):
    model = fastembed.train_supervised(str(trec_train), **SETTINGS)  # compiles what is not cached yet
    pairs = model.predict(LINES, k=2)
    vectors = fastembed.train_unsupervised(str(trec_train), **VECTORS)
    done = subprocess.run([sys.executable, "-c", CHILD, str(trec_train)], capture_output=True, text=True,
                          check=True)
    child = json.loads(done.stdout.splitlines()[-1])
    # Numba's lowering registries (its NumPy support among them) were never imported: no kernel
    # compiled, and loading did not set them up either; nor did anything import scipy.linalg
    assert not child["registries"]
    assert not child["scipy"]
    assert child["labels"] == [list(x) for x, _ in pairs]
    assert child["probs"] == [[float(p) for p in row] for _, row in pairs]
    assert child["vector"] == [float(x) for x in vectors.get_word_vector("capital")]
