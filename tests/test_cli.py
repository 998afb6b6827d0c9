"""The ``fastembed`` command: its outputs, and one-line errors for bad input."""

import gzip
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

import fastembed
from fastembed.cli import main

FAST = ["--epoch", "5", "--dim", "10", "--lr", "0.5", "--threads", "1", "-q"]


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def assert_one_line_error(result, *fragments, code=None):
    assert result.exit_code != 0 if code is None else result.exit_code == code, result.output
    err = result.stderr.strip()
    assert "Traceback" not in result.output
    assert err.count("\n") == 0 and err.startswith("fastembed: error: "), err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def model_path(trec_train, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "trec.fe"
    result = run("train", trec_train, "-o", path, "--word-ngrams", "2", *FAST)
    assert result.exit_code == 0, result.output
    return path


def test_version_and_help():
    assert run("--version").output.strip() == f"fastembed, version {fastembed.__version__}"
    for cmd in ["train", "test", "predict", "vectors", "info"]:
        result = run(cmd, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_train_prints_a_summary(trec_train, trec_test, tmp_path):
    out = tmp_path / "m.fe"
    result = run("train", trec_train, "-o", out, "--valid", trec_test, "--epoch", "3",
                 "--dim", "10", "--threads", "1")
    assert result.exit_code == 0, result.output
    for key in ["examples", "tokens", "vocabulary", "labels", "time", "valid P@1", "model"]:
        assert key in result.stdout
    assert "Progress:" in result.stderr and "ETA" in result.stderr
    assert out.exists()


def test_train_without_corpus_uses_the_bundled_one(tmp_path):
    out = tmp_path / "m.fe"
    result = run("train", "-o", out, "--epoch", "1", "--dim", "5", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "test P@1" in result.stdout and "trec6.test.txt" in result.stdout


def test_test_command(model_path, trec_test):
    result = run("test", model_path, trec_test, "-k", "2")
    assert result.exit_code == 0
    n, p, r = fastembed.load_model(model_path).test(trec_test, k=2)
    assert result.stdout == f"N\t{n}\nP@2\t{p:.3f}\nR@2\t{r:.3f}\n"
    per_label = run("test", model_path, trec_test, "--per-label").stdout
    assert per_label.count("F1-Score") == 6 and "__label__HUM" in per_label


def test_predict_one_line_per_input_line(model_path, trec_test):
    lines = trec_test.read_text().splitlines()[:20]
    text = "\n".join(line.split(" ", 1)[1] for line in lines) + "\n\n"  # a blank line too
    result = run("predict", model_path, "-", "-k", "2", "--prob", input=text)
    assert result.exit_code == 0
    out = result.stdout.splitlines()
    assert len(out) == 21
    model = fastembed.load_model(model_path)
    labels, probs = model.predict(lines[3].split(" ", 1)[1], k=2)
    fields = out[3].split()
    assert fields[0::2] == list(labels)
    np.testing.assert_allclose([float(x) for x in fields[1::2]], probs, rtol=1e-5)
    high = run("predict", model_path, "-", "--threshold", "0.99999", input=text).stdout
    assert len(high.splitlines()) == 21


def test_predict_reads_files_including_gzip(model_path, trec_test, tmp_path):
    gz = tmp_path / "t.txt.gz"
    gz.write_bytes(gzip.compress(trec_test.read_bytes()))
    plain = run("predict", model_path, trec_test).stdout
    assert len(plain.splitlines()) == 500
    assert run("predict", model_path, gz).stdout == plain


def test_vectors_in_word2vec_format(model_path, tmp_path):
    out = tmp_path / "w.vec"
    assert run("vectors", model_path, "-o", out).exit_code == 0
    model = fastembed.load_model(model_path)
    lines = out.read_bytes().splitlines()
    n, dim = map(int, lines[0].split())
    assert (n, dim) == (len(model.words), model.dim) and len(lines) == n + 1
    first = lines[1].split(b" ")
    assert first[0].decode() == model.words[0]
    np.testing.assert_allclose([float(x) for x in first[1:]], model.word_vectors()[0], rtol=1e-4)


def test_info(model_path):
    result = run("info", model_path)
    assert result.exit_code == 0
    assert "dim            10" in result.stdout and "word_ngrams=2" in result.stdout


@pytest.mark.parametrize("args,fragment", [
    (["train", "/nonexistent/corpus.txt"], "/nonexistent/corpus.txt"),
    (["train", "{empty}"], "{empty}"),
    (["train", "{unlabelled}"], "{unlabelled}"),
    (["train", "{corpus}", "--dim", "0"], "dim"),
    (["train", "{corpus}", "--epoch", "-2"], "epoch"),
    (["train", "{corpus}", "--lr", "nan"], "lr"),
    (["train", "{corpus}", "--lr", "inf"], "lr"),
    (["train", "{corpus}", "--no-such-option"], "no-such-option"),
    (["train", "{corpus}", "--loss", "nope"], "nope"),
    (["test", "{corrupt}", "{corpus}"], "{corrupt}"),
    (["test", "/nonexistent/model.fe", "{corpus}"], "/nonexistent/model.fe"),
    (["predict", "{corrupt}", "-"], "{corrupt}"),
    (["info", "{corpus}"], "not a fastembed model"),
    (["frobnicate"], "frobnicate"),
])
def test_bad_input_is_one_line_and_nonzero(args, fragment, trec_train, tmp_path):
    files = {
        "empty": tmp_path / "empty.txt",
        "unlabelled": tmp_path / "unlabelled.txt",
        "corrupt": tmp_path / "corrupt.fe",
        "corpus": trec_train,
    }
    files["empty"].write_bytes(b"")
    files["unlabelled"].write_bytes(b"no labels here\nnor here\n")
    files["corrupt"].write_bytes(b"PK\x03\x04garbage")
    args = [a.format(**files) for a in args]
    out = tmp_path / "m.fe"
    result = run(*args, *(["-o", out] if args[0] == "train" else []))
    assert_one_line_error(result, fragment.format(**files))
    assert not out.exists()


def test_ctrl_c_once_a_checkpoint_is_written_prints_the_command_that_resumes(trec_train, tmp_path, monkeypatch):
    """In-process form of the subprocess test below (quick without the JIT, and measured by the
    coverage run): Ctrl-C once epoch 1 is checkpointed. The last stderr line names the checkpoint
    and a command that repeats only the run's own options (the quoted path with a space, the
    sample weights, a non-default --max-line-bytes, -q), not the settings the checkpoint holds;
    run as printed, it ends with the uninterrupted run's model."""
    from test_continuation import _interrupted

    corpus = tmp_path / "my corpus.txt"
    lines = trec_train.read_bytes().splitlines(keepends=True)[:200]
    corpus.write_bytes(b"".join(lines))
    weights = tmp_path / "w.txt"
    weights.write_text("".join(f"{1 + i % 3}\n" for i in range(len(lines))))
    settings = ["--epoch", "3", "--dim", "8", "--threads", "1", "--sample-weight", weights,
                "--max-line-bytes", "4096", "-q"]
    checkpoint, out = tmp_path / "run.ckpt", tmp_path / "m.fe"
    with monkeypatch.context() as patch:
        _interrupted(patch, after=1)
        result = run("train", corpus, "-o", out, "--checkpoint", checkpoint, *settings)
    assert result.exit_code == 130, result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"fastembed: error: interrupted; {out} was not written, but the "
                              f"checkpoint {checkpoint} holds the last complete epoch; continue with: ")
    assert not out.exists()
    resume = shlex.split(message.split("continue with: ")[1])
    assert resume == ["fastembed", "train", str(corpus), "--resume", str(checkpoint), "--checkpoint",
                      str(checkpoint), "-o", str(out), "--sample-weight", str(weights), "-q",
                      "--max-line-bytes", "4096"]
    assert run(*resume[1:]).exit_code == 0
    assert run("train", corpus, "-o", tmp_path / "whole.fe", *settings).exit_code == 0
    resumed, whole = fastembed.load_model(out), fastembed.load_model(tmp_path / "whole.fe")
    np.testing.assert_array_equal(resumed.input_matrix, whole.input_matrix)
    np.testing.assert_array_equal(resumed.output_matrix, whole.output_matrix)


def test_ctrl_c_before_any_checkpoint_is_the_plain_message(trec_train, tmp_path, monkeypatch):
    """No checkpoint written by this run: nothing to resume from, the generic message."""
    from fastembed.model import continuation

    def interrupt(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(continuation.Checkpointer, "__call__", interrupt)
    corpus = tmp_path / "small.txt"
    corpus.write_bytes(b"".join(trec_train.read_bytes().splitlines(keepends=True)[:100]))
    result = run("train", corpus, "-o", tmp_path / "m.fe", "--checkpoint", tmp_path / "c.ckpt",
                 "--epoch", "2", "--dim", "8", "--threads", "1", "-q")
    assert_one_line_error(result, "interrupted; no model file was written or changed", code=130)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.txt"]


def test_failed_training_keeps_the_existing_model(trec_train, tmp_path):
    out = tmp_path / "m.fe"
    out.write_bytes(b"old model")
    result = run("train", trec_train, "-o", out, "--lr", "1e30", "--epoch", "1", "-q")
    assert_one_line_error(result, "lr=1e+30")
    assert out.read_bytes() == b"old model"


@pytest.mark.slow_without_jit
def test_ctrl_c_leaves_the_existing_model_untouched(tmp_path):
    # a long run on real text (the bundled corpus repeated), interrupted as a user would
    corpus = tmp_path / "big.txt"
    data = (fastembed.cli.bundled_corpus()[0]).read_bytes()
    corpus.write_bytes(data * 40)
    out = tmp_path / "m.fe"
    out.write_bytes(b"old model")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastembed.cli", "train", str(corpus), "-o", str(out),
         "--epoch", "200", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # wait for training to start (first progress line), then interrupt
    deadline = time.time() + 60
    line = b""
    while time.time() < deadline and b"Progress" not in line:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and b"interrupted" in err
    assert out.read_bytes() == b"old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "m.fe"]


@pytest.mark.slow_without_jit
def test_ctrl_c_with_a_checkpoint_names_it_and_the_command_that_resumes(tmp_path):
    """Ctrl-C once the first checkpoint is written: the message names the checkpoint and a
    --resume command; that command, run as printed, ends with the uninterrupted run's model."""
    corpus = tmp_path / "big.txt"
    corpus.write_bytes(fastembed.cli.bundled_corpus()[0].read_bytes() * 4)
    weights = tmp_path / "w.txt"  # a run option the checkpoint does not hold: the command repeats it
    weights.write_text("".join(f"{1 + i % 3}\n" for i in range(len(corpus.read_bytes().splitlines()))))
    settings = ["--epoch", "40", "--dim", "10", "--threads", "1", "--sample-weight", str(weights)]
    checkpoint, out = tmp_path / "run.ckpt", tmp_path / "m.fe"
    command = [sys.executable, "-m", "fastembed", "train", str(corpus), "-o", str(out), *settings]
    proc = subprocess.Popen(command + ["--checkpoint", str(checkpoint)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130, err
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"fastembed: error: interrupted; {out} was not written, but the "
                              f"checkpoint {checkpoint} holds the last complete epoch; continue with: ")
    assert "Traceback" not in err and not out.exists()
    resume = shlex.split(message.split("continue with: ")[1])
    assert resume[:2] == ["fastembed", "train"] and "--resume" in resume and "--sample-weight" in resume
    done = subprocess.run([sys.executable, "-m", "fastembed", *resume[1:]], capture_output=True, cwd=tmp_path,
                          check=False)
    assert done.returncode == 0, done.stderr
    resumed = fastembed.load_model(out)
    subprocess.run(command + ["-o", str(tmp_path / "whole.fe"), "-q"], cwd=tmp_path, check=True)
    whole = fastembed.load_model(tmp_path / "whole.fe")
    np.testing.assert_array_equal(resumed.input_matrix, whole.input_matrix)
    np.testing.assert_array_equal(resumed.output_matrix, whole.output_matrix)
