"""The ``fastembed`` command line.

Results go to stdout, progress and diagnostics to stderr. Every expected failure (bad
arguments, a missing or malformed corpus, a corrupt model, divergence, Ctrl-C) ends with one
``fastembed: error: ...`` line and a non-zero exit status, never a traceback.
"""

import contextlib
import functools
import gzip
import os
import sys
import time
import warnings
from pathlib import Path

import click

from fastembed._version import __version__
from fastembed.cli_options import k_option, max_line_option, settings_options, threshold_option, with_presets
from fastembed.cli_resume import file_identity, resume_command
from fastembed.errors import FastembedError
from fastembed.settings import AUTOTUNE_SETTINGS, PRESETS, RUN_SETTINGS, UNSUPERVISED_SETTINGS

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_PREDICT_BATCH_BYTES = 8 << 20  # stdin and files are predicted in blocks of whole lines


class _Group(click.Group):
    """A click group whose failures are one line on stderr."""

    def main(self, args=None, prog_name=None, **extra):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                rv = super().main(args=args, prog_name=prog_name or "fastembed",
                                  standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _fail(f"{exc.format_message()}{hint}", EXIT_USAGE)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code or EXIT_ERROR)
        except _Interrupted as exc:
            _fail(str(exc), EXIT_INTERRUPTED)
        except click.Abort as exc:
            if isinstance(exc.__cause__, EOFError):  # click's reading of EOFError as Ctrl-D
                _fail(f"unexpected end of input ({exc.__cause__})", EXIT_ERROR)
            _fail("interrupted; no model file was written or changed", EXIT_INTERRUPTED)
        except KeyboardInterrupt:
            _fail("interrupted; no model file was written or changed", EXIT_INTERRUPTED)
        except BrokenPipeError:
            # the reader went away (e.g. `| head`): not an error of ours
            sys.stderr.close()
            sys.exit(0)
        except (FastembedError, OSError) as exc:
            _fail(_one_line(exc), EXIT_ERROR)
        except MemoryError:
            _fail("out of memory", EXIT_ERROR)
        code = rv if isinstance(rv, int) else 0
        if args is None and "coverage" not in sys.modules:  # a process of its own, not measured
            _exit_now(code)
        sys.exit(code)


class _Interrupted(Exception):
    """Ctrl-C during a command that has more to say than the generic message."""


def _exit_now(code):
    """End a finished command's process without the interpreter's teardown.

    With Numba loaded, the teardown took 0.15-0.3 s of CPU after `fastembed predict` on 20
    lines (a fifth of the process), and a finished command needs none of it: its model file
    was closed and renamed already; its output is flushed here.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the reader went away: nothing left to tell it
        pass
    os._exit(code)


def _one_line(exc):
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split("\n"))


def _fail(message, code):
    click.echo(f"fastembed: error: {message}", err=True)
    sys.exit(code)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"fastembed: warning: {message}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fastembed")
def main():
    """fastembed: train and use fastText-style text classifiers, fast.

    Corpora are in fastText's format: one example per line, labels as
    __label__NAME tokens, then the text. Plain or gzipped files.
    """


# -- checks shared by commands ------------------------------------------------------------------

def _refuse_overwriting_inputs(output, *inputs, option="'-o' / '--output'"):
    """A usage error, before any work, if ``output`` is one of the command's inputs."""
    from fastembed.errors import ArgumentError
    from fastembed.files import check_output_is_not_an_input

    if output is None:
        return
    try:
        check_output_is_not_an_input(output, inputs)
    except ArgumentError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


# -- train -------------------------------------------------------------------------------------

def bundled_corpus():
    """Train and test files of the bundled TREC-6 corpus, kept once in the repository's ``data/``.

    An installed distribution carries that folder as ``fastembed/_data`` (setup.py maps it there
    at build time); a source tree (an editable install, or the repository on ``sys.path``) reads
    ``data/`` beside the package. ``FASTEMBED_DATA`` overrides both.
    """
    root = os.environ.get("FASTEMBED_DATA")
    if root is None:
        package = Path(__file__).resolve().parent
        root = package / "_data" if (package / "_data").is_dir() else package.parent / "data"
    root = Path(root)
    train, test = root / "trec6.train.txt", root / "trec6.test.txt"
    if not train.is_file() or not test.is_file():
        raise click.UsageError(
            f"no CORPUS given and the bundled corpus is not in {root} (set FASTEMBED_DATA)")
    return train, test


@with_presets
@main.command()
@click.argument("corpus", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--output", default="model.fe", show_default=True,
              type=click.Path(dir_okay=False), help="Where to write the model.")
@click.option("--preset", type=click.Choice(PRESETS), default="fastembed",
              show_default=True, help="Where unset settings come from (see above).")
@settings_options
@functools.partial(settings_options, settings=RUN_SETTINGS)
@click.option("--valid", type=click.Path(dir_okay=False),
              help="A labelled corpus scored after every epoch (P@1, R@1, loss; see --patience).")
@lambda command: settings_options(command, AUTOTUNE_SETTINGS)
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Encode CORPUS out of core into this directory and reuse the encoding next "
                   "time (same file, same settings). Files of 256 MiB and more are always encoded "
                   "out of core, in a temporary directory without this.")
@click.option("-q", "--quiet", is_flag=True, help="No progress, no summary.")
@max_line_option
def train(corpus, output, quiet, valid, **params):
    """Train a classifier on CORPUS (default: the bundled TREC-6 corpus) and save it.

    With no CORPUS, it trains on the bundled corpus and prints test metrics on its held-out
    part. The model file is replaced only when training succeeds.

    Settings not given come from the preset ("fasttext" is fastText's own model and defaults):
    """
    from fastembed.model import train_supervised

    held_out = None
    if corpus is None:
        corpus, held_out = bundled_corpus()
        if not quiet:
            click.echo(f"Training on the bundled corpus {corpus}", err=True)
    if valid is None and held_out is not None:
        valid = held_out
    inputs = (corpus, valid, params["autotune_validation"], params["init_model"], params["sample_weight"])
    _refuse_overwriting_inputs(output, *inputs, params["resume"])
    # The checkpoint may be the file --resume reads (a resumed run goes on writing it), but no
    # other input.
    _refuse_overwriting_inputs(params["checkpoint"], *inputs, option="'--checkpoint'")
    t0 = time.perf_counter()
    checkpoint_before = file_identity(params["checkpoint"])
    try:
        model = train_supervised(corpus, verbose=0 if quiet else 1, valid=valid, **params)
    except KeyboardInterrupt:
        resumable = params["checkpoint"] is not None and (
            file_identity(params["checkpoint"]) != checkpoint_before  # written by this run
            or params["resume"] is not None and file_identity(params["resume"]) == checkpoint_before)
        if not resumable:
            raise
        given = [("--valid", None if valid == held_out else valid), ("--cache-dir", params["cache_dir"])]
        given += [(s.option, params[s.name]) for s in RUN_SETTINGS] + [("-q", quiet)]
        raise _Interrupted(
            f"interrupted; {output} was not written, but the checkpoint {params['checkpoint']} holds "
            f"the last complete epoch; continue with: "
            f"{resume_command(None if held_out else corpus, output, params['checkpoint'], given)}") from None
    model.save(output)
    if quiet:
        return
    s = model.train_stats
    lines = [
        ("examples", f"{s['examples']:,}" + (f" ({s['skipped']:,} lines skipped)" if s["skipped"] else "")),
        ("tokens", f"{s['tokens']:,}"),
        ("vocabulary", f"{s['words']:,} words, {s['buckets_used']:,} n-gram buckets used"),
        ("labels", f"{s['labels']:,}"),
        ("time", f"{time.perf_counter() - t0:.2f} s (read {s['read_s']:.2f} s, "
                 f"init {s.get('init_s', 0.0):.2f} s, train {s['train_s']:.2f} s, {s['threads']} threads)"),
        ("final loss", f"{s['final_loss']:.4f}"),
    ]
    if "autotune" in s:
        a = s["autotune"]
        best = " ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in a["best_settings"].items())
        lines.append(("autotune", f"{a['metric']} {a['best_score']:.4f} (trial {a['best_trial']} of "
                                  f"{len(a['trials'])}): {best}"))
        r = a["refit"]
        lines.append(("refit", f"{r['status']}: " + (r["reason"] or f"training + validation data, "
                                                               f"{r['seconds']:.2f} s")))
    if "valid_examples" in s:
        name = "test" if held_out is not None and valid == held_out else "valid"
        lines.append((f"{name} P@1", f"{s['valid_precision_at_1']:.4f} on "
                                     f"{s['valid_examples']:,} examples ({valid})"))
        lines += _history_lines(s, name)
    lines.append(("model", f"{output} ({os.path.getsize(output) / 1e6:.1f} MB)"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"{key:<{width}}  {value}")


def _history_lines(stats, name):
    """The per-epoch validation figures, and where training stopped, as summary lines."""
    lines = [(f"epoch {e['epoch']}", f"train loss {e['train_loss']:.4f}  {name} loss "
                                      f"{e['valid_loss']:.4f}  P@1 {e['valid_precision_at_1']:.4f}  "
                                      f"R@1 {e['valid_recall_at_1']:.4f}")
             for e in stats["history"]]
    if "best_epoch" in stats:
        stopped = " (early stop)" if stats.get("stopped_by") == "patience" else ""
        lines.append(("best epoch", f"{stats['best_epoch']} of {stats['epochs_trained']}{stopped}: "
                                    "the model saved"))
    return lines


# -- skipgram / cbow ---------------------------------------------------------------------------

def _word_vector_command(model_name, summary):
    """``fastembed skipgram`` and ``fastembed cbow``: options from UNSUPERVISED_SETTINGS."""

    def command(corpus, output, vec, quiet, **params):
        from fastembed.wordvec import train_unsupervised

        _refuse_overwriting_inputs(output, corpus)
        _refuse_overwriting_inputs(vec, corpus, output, option="'--vec'")
        t0 = time.perf_counter()
        model = train_unsupervised(corpus, model=model_name, verbose=0 if quiet else 1, **params)
        model.save(output)
        if vec is not None:
            model.save_vec(vec)
        if quiet:
            return
        s = model.train_stats
        lines = [("tokens", f"{s['tokens']:,} known of {s['corpus_tokens']:,}, {s['lines']:,} lines"),
                 ("vocabulary", f"{s['words']:,} words, {s['buckets_used']:,} n-gram buckets used"),
                 ("time", f"{time.perf_counter() - t0:.2f} s (read {s['read_s']:.2f} s, "
                          f"train {s['train_s']:.2f} s, {s['threads']} threads)"),
                 ("final loss", f"{s['final_loss']:.4f}"),
                 ("model", f"{output} ({os.path.getsize(output) / 1e6:.1f} MB)")]
        if vec is not None:
            lines.append(("vectors", f"{vec} ({os.path.getsize(vec) / 1e6:.1f} MB)"))
        width = max(len(k) for k, _ in lines)
        for key, value in lines:
            click.echo(f"{key:<{width}}  {value}")

    command.__doc__ = (f"Train {summary} word vectors on CORPUS (raw text, plain or .gz) and save "
                       "them.\n\nWords are split on whitespace; every word gets a vector from its "
                       "character n-grams, words the corpus never saw included. The model file is "
                       "replaced only when training succeeds.")
    settings = tuple(s for s in UNSUPERVISED_SETTINGS if s.name != "model")
    command = click.option("-q", "--quiet", is_flag=True, help="No progress, no summary.")(command)
    command = max_line_option(command)
    command = settings_options(command, settings)
    command = click.option("--vec", type=click.Path(dir_okay=False),
                           help="Also write the vocabulary's vectors here (word2vec text, .vec).")(command)
    command = click.option("-o", "--output", default=f"{model_name}.fe", show_default=True,
                           type=click.Path(dir_okay=False), help="Where to write the model.")(command)
    command = click.argument("corpus", type=click.Path(dir_okay=False))(command)
    return main.command(name=model_name)(command)


skipgram = _word_vector_command("skipgram", "skipgram (a word's n-grams predict its context)")
cbow = _word_vector_command("cbow", "cbow (the context's n-grams predict the word)")


# -- test / predict ----------------------------------------------------------------------------

@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("corpus", type=click.Path(dir_okay=False))
@k_option
@threshold_option("Count only labels at least this probable.")
@click.option("--per-label", is_flag=True, help="Precision, recall and F1 of every label.")
@max_line_option
def test(model_path, corpus, k, threshold, per_label):
    """Precision and recall at K of MODEL on a labelled CORPUS."""
    import fastembed

    model = fastembed.load_model(model_path)
    n, p, r = model.test(corpus, k=k, threshold=threshold)
    label = "K" if k == -1 else str(k)
    if per_label:
        for name, m in model.test_label(corpus, k=k, threshold=threshold).items():
            click.echo(f"F1-Score : {m['f1score']:.6f}  Precision : {m['precision']:.6f}  "
                       f"Recall : {m['recall']:.6f}   {name}")
    click.echo(f"N\t{n}\nP@{label}\t{p:.3f}\nR@{label}\t{r:.3f}")


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("source", metavar="FILE|-", type=click.Path(dir_okay=False, allow_dash=True))
@k_option
@click.option("--prob", is_flag=True, help="Print each label's probability after it.")
@threshold_option("Print only labels at least this probable.")
@max_line_option
def predict(model_path, source, k, prob, threshold):
    """The K most probable labels of each line of FILE (or stdin: -), one output line each.

    FILE may be gzipped (.gz). Lines are read and predicted in blocks, so a pipe works.
    """
    import fastembed

    model = fastembed.load_model(model_path)
    out = sys.stdout
    if source == "-":
        stream = contextlib.nullcontext(sys.stdin.buffer)
    elif source.endswith(".gz"):
        stream = gzip.open(source, "rb")
    else:
        stream = open(source, "rb")
    with stream as f:
        _predict_stream(model, f, out, k, prob, threshold)


def _predict_stream(model, f, out, k, prob, threshold):
    """Predict block by block; each block's output is written at once."""
    import numpy as np

    for block in _line_blocks(f):
        top_ids, top_probs, counts = model.predict_block(np.frombuffer(block, dtype=np.uint8), k=k,
                                                         threshold=threshold)
        names = model.label_names(top_ids, counts)
        if prob:
            lines = (" ".join(f"{name} {p:.6g}" for name, p in zip(row, probs))
                     for row, probs in zip(names, top_probs.tolist()))
        else:
            lines = map(" ".join, names)
        out.write("".join(line + "\n" for line in lines))
        out.flush()


def _line_blocks(stream):
    """Blocks of whole lines (bytes) from a binary stream, so stdin needs no full read.

    A line longer than --max-line-bytes is an error naming it, raised as soon as the limit is
    passed (so /dev/zero ends at once); a corrupt or truncated gzip stream is an error too.
    """
    from fastembed.text.reader import LineLengthCheck, gzip_errors

    name = getattr(stream, "name", None)
    name = name if isinstance(name, str) else "<stdin>"
    check = LineLengthCheck(name)
    rest = b""
    with gzip_errors(name):
        while True:
            chunk = stream.read(_PREDICT_BATCH_BYTES)
            if not chunk:
                break
            check.feed(chunk)
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            if cut:
                yield data[:cut]
            rest = data[cut:]
    if rest:
        yield rest


# -- vectors / info ----------------------------------------------------------------------------

@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write here (atomically) instead of stdout.")
def vectors(model_path, output):
    """Word vectors of MODEL in word2vec text format (.vec), as gensim loads them."""
    import fastembed
    from fastembed.files import atomic_output

    if output is not None:
        _refuse_overwriting_inputs(output, model_path)
    model = fastembed.load_model(model_path)
    if output is None:
        _write_vectors(model, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        with atomic_output(output) as f:
            _write_vectors(model, f)


def _write_vectors(model, f):
    """word2vec text format, valid UTF-8 throughout (see :func:`write_word2vec`)."""
    from fastembed.wordvec.vectors import write_word2vec

    write_word2vec(f, model.dictionary.word_bytes, model.word_vectors())


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The fastText model file to write (.bin).")
def export(model_path, output):
    """Write MODEL as a fastText .bin that fastText's load_model reads.

    Only models fastText can represent: mean pooling (--preset fasttext or --pooling mean),
    softmax, ova or hs, the __label__ prefix.
    """
    import fastembed

    _refuse_overwriting_inputs(output, model_path)
    _classifier(fastembed.load_model(model_path), model_path, "export").save_fasttext(output)
    click.echo(f"{output} ({os.path.getsize(output) / 1e6:.1f} MB)")


def _classifier(model, path, command):
    """``model`` if it is a classifier; word vectors have no ``command``."""
    from fastembed.errors import ArgumentError
    from fastembed.model import Model

    if not isinstance(model, Model):
        raise ArgumentError(f"{path}: word vectors, not a classifier: `fastembed {command}` takes a classifier")
    return model


def _cutoff(value):
    """--cutoff: a row count (0: all), a fraction in (0, 1), or auto."""
    if value == "auto":
        return value
    try:
        number = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number", param_hint="'--cutoff'") from None
    return int(number) if number >= 1 and number.is_integer() or number == 0 else number


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write the compressed model (.fe).")
@click.option("--dsub", type=click.IntRange(1, None), default=None,
              help="Columns per one-byte code of product quantization [default: 4; 2 for a fastText model, "
                   "as fastText's quantize].")
@click.option("--qnorm/--no-qnorm", default=False, show_default=True,
              help="Quantize each row's norm apart (one byte a row).")
@click.option("--cutoff", default="auto", show_default=True,
              help="Input rows kept, those of largest norm: a count (0: all), a fraction in (0, 1), or auto: "
                   "as many as fit in a file 10.5x smaller.")
@click.option("--qout", is_flag=True, help="Quantize the output matrix too.")
@click.option("--seed", type=click.IntRange(0, None), default=0, show_default=True, help="k-means seed.")
def quantize(model_path, output, dsub, qnorm, cutoff, qout, seed):
    """Compress MODEL: prune its input rows, product-quantize them; write a fastembed model (a fastText
    .bin/.ftz gives a fastText .ftz)."""
    import fastembed

    _refuse_overwriting_inputs(output, model_path)
    t0 = time.perf_counter()
    settings = {} if dsub is None else {"dsub": dsub}
    small = _classifier(fastembed.load_model(model_path), model_path, "quantize").quantize(
        qnorm=qnorm, cutoff=_cutoff(cutoff), qout=qout, seed=seed, **settings)
    small.save(output)
    before, after = os.path.getsize(model_path), os.path.getsize(output)
    click.echo(f"{output} ({after / 1e6:.2f} MB, {before / after:.1f}x smaller than {before / 1e6:.2f} MB; "
               f"{small.train_stats['quantized_rows']:,} of {small.train_stats['original_rows']:,} input rows "
               f"kept; {time.perf_counter() - t0:.1f} s)")


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
def info(model_path):
    """Dimensions, vocabulary, labels and training arguments of MODEL."""
    import fastembed

    model = fastembed.load_model(model_path)
    d = model.dictionary
    click.echo(f"file           {model_path} ({os.path.getsize(model_path) / 1e6:.2f} MB)")
    click.echo(f"dim            {model.dim}")
    click.echo(f"words          {d.nwords:,}")
    click.echo(f"n-gram rows    {model.bucket_ids.size:,} used of {d.bucket:,} buckets")
    click.echo(f"labels         {d.nlabels:,}: {' '.join(model.labels[:10])}"
               + (" ..." if d.nlabels > 10 else ""))
    click.echo("arguments      " + " ".join(f"{k}={v}" for k, v in model.args.to_dict().items()))


if __name__ == "__main__":  # pragma: no cover
    main()
