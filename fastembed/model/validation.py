"""Validation after every epoch, and early stopping on it (``valid=``, ``patience=``).

:class:`Validation` encodes the validation corpus once, with the training dictionary (fixed
once training starts), and after each epoch scores it with the tables as they are: P@1 and R@1
exactly as :meth:`Model.test` with ``k=1`` counts them, and the mean loss of a line as the
training loss defines it (softmax and hs: ``-log p`` of a gold label, averaged over the line's
gold labels, since training draws one of them per step; ova: the summed binary losses of every
label), with fastText's ``1e-5`` inside the log.

:class:`EarlyStopping` keeps a copy of both tables as of the best epoch so far (higher P@1;
on a tie, lower validation loss) and stops after ``patience`` epochs without a better one;
the run then returns the best epoch's tables. A checkpoint carries the history and the best
epoch so far, with that epoch's tables when it is not the checkpoint's own (so a checkpoint
waiting for a better epoch is up to twice the size): a resumed run stops after the same epoch
as the uninterrupted one and returns the same tables.
"""

import numpy as np

from fastembed.model.loss import LOG_EPS
from fastembed.text.memory import corpus_bytes

__all__ = ["EarlyStopping", "EpochMonitor", "Validation", "valid_source"]

_METRICS = ("valid_examples", "valid_precision_at_1", "valid_recall_at_1", "valid_loss")


def valid_source(valid, label_prefix):
    """A validation corpus the reader takes: ``valid`` itself, or the bytes of ``(texts, labels)``."""
    if isinstance(valid, tuple) and len(valid) == 2 and not isinstance(valid[0], (str, bytes)):
        return corpus_bytes(valid[0], valid[1], label_prefix, name="valid")[0]
    return valid


class Validation:
    """The validation corpus ``source`` encoded for ``model``, scored on demand."""

    def __init__(self, model, source):
        self.model = model
        self.bags = model._encode(source, keep_unlabelled=False, threads=model.args.n_threads)
        lab_off = self.bags.label_offsets
        self.n_lines = lab_off.size - 1
        self.line_of_label = np.repeat(np.arange(self.n_lines), np.diff(lab_off))

    def evaluate(self):
        """``{"valid_examples", "valid_precision_at_1", "valid_recall_at_1", "valid_loss"}``."""
        bags, loss = self.bags, self.model.args.loss
        hits = 0
        loss_sum = 0.0
        row0 = 0
        for probs in self.model._bag_probabilities(bags):
            rows = slice(row0, row0 + probs.shape[0])
            gold = self._gold(rows, probs.shape)
            top = np.argmax(probs, axis=1)
            hits += int(gold[np.arange(probs.shape[0]), top].sum())
            p = probs.astype(np.float64)
            if loss == "ova":
                terms = np.where(gold, -np.log(p + LOG_EPS), -np.log(1.0 - p + LOG_EPS))
                loss_sum += float(terms.sum())
            else:
                label_loss = np.where(gold, -np.log(p + LOG_EPS), 0.0).sum(axis=1)
                loss_sum += float((label_loss / np.maximum(gold.sum(axis=1), 1)).sum())
            row0 += probs.shape[0]
        n = max(self.n_lines, 1)
        n_gold = bags.label_indices.size
        return {"valid_examples": int(self.n_lines), "valid_precision_at_1": hits / n,
                "valid_recall_at_1": hits / max(n_gold, 1), "valid_loss": loss_sum / n}

    def _gold(self, rows, shape):
        """The gold labels of lines ``rows`` as a boolean matrix ``shape``."""
        lab_off = self.bags.label_offsets
        first, last = lab_off[rows.start], lab_off[rows.stop]
        gold = np.zeros(shape, dtype=bool)
        gold[self.line_of_label[first:last] - rows.start, self.bags.label_indices[first:last]] = True
        return gold


class EarlyStopping:
    """The best epoch so far, a copy of its tables, and whether to stop (``patience`` > 0)."""

    def __init__(self, patience):
        self.patience = patience
        self.best_epoch = None
        self.best = None
        self.tables = None
        self.waited = 0

    def observe(self, epoch, metrics, tables):
        """Record ``epoch``'s ``metrics``; returns True when training should stop."""
        key = (metrics["valid_precision_at_1"], -metrics["valid_loss"])
        if self.best is None or key > self.best:
            self.best, self.best_epoch, self.waited = key, epoch, 0
            if self.tables is None:
                self.tables = [np.empty_like(t) for t in tables]
            for kept, table in zip(self.tables, tables):
                np.copyto(kept, table)
            return False
        self.waited += 1
        return self.waited >= self.patience

    @property
    def exhausted(self):
        """Whether ``patience`` epochs have passed without a better one."""
        return self.best is not None and self.waited >= self.patience

    def resume(self, best, best_tables, epochs_done, tables):
        """The state of a checkpoint after ``epochs_done`` epochs: ``best`` its best epoch so
        far (:meth:`checkpoint_state`), ``best_tables`` that epoch's tables when it is not the
        last one (else the current ``tables`` are copied)."""
        self.best = (best["precision_at_1"], -best["loss"])
        self.best_epoch = best["epoch"]
        self.waited = epochs_done - self.best_epoch
        self.tables = ([np.array(t) for t in best_tables] if self.waited else
                       [np.array(t, copy=True) for t in tables])

    def restore(self, tables):
        """Put the best epoch's tables back (in place)."""
        if self.tables is not None:
            for kept, table in zip(self.tables, tables):
                np.copyto(table, kept)


class EpochMonitor:
    """What happens at each epoch's end: the history entry, validation, early stopping.

    ``validation`` is a :class:`Validation` or None; ``patience`` > 0 needs one.
    """

    def __init__(self, validation, patience):
        self.validation = validation
        self.stopping = EarlyStopping(patience) if patience else None
        self.history = []
        self.current = None  # validation metrics of the tables as they are, if known

    def end_epoch(self, epoch, train_loss, lr, elapsed, tables):
        """Record epoch ``epoch``; returns (its history entry, whether to stop now)."""
        entry = {"epoch": epoch, "train_loss": float(train_loss), "lr": float(lr), "elapsed": elapsed}
        stop = False
        if self.validation is not None:
            self.current = self.validation.evaluate()
            entry.update(self.current)
            if self.stopping is not None:
                stop = self.stopping.observe(epoch, self.current, tables)
        self.history.append(entry)
        return entry, stop

    def checkpoint_state(self, epochs_done):
        """What a checkpoint after ``epochs_done`` epochs keeps of early stopping: ``(best, tables)``,
        ``best`` = {"epoch", "precision_at_1", "loss"} (None without patience), ``tables`` the
        best epoch's (input, output) when that epoch is not the last one (else None)."""
        stopping = self.stopping
        if stopping is None or stopping.best_epoch is None:
            return None, None
        best = {"epoch": stopping.best_epoch, "precision_at_1": stopping.best[0], "loss": -stopping.best[1]}
        return best, (stopping.tables if stopping.best_epoch < epochs_done else None)

    def resume(self, state, tables):
        """Continue from a checkpoint's ``state`` (``file_schema._training_state`` with
        ``history`` and ``best_tables``): its history, and early stopping's best epoch so far,
        so that a resumed run stops where the uninterrupted one would and returns the same
        epoch. A checkpoint of a run without patience has no best epoch: patience then counts
        from the checkpoint."""
        self.history = [dict(h) for h in state.history if h["epoch"] <= state.epochs_done]
        last = self.history[-1] if self.history and self.history[-1]["epoch"] == state.epochs_done else {}
        if self.validation is not None and "valid_loss" in last:
            self.current = {k: last[k] for k in _METRICS}
        if self.stopping is not None and state.best is not None:
            self.stopping.resume(state.best, state.best_tables, state.epochs_done, tables)

    @property
    def exhausted(self):
        """Whether early stopping has stopped the run already (a resumed run's checkpoint)."""
        return self.stopping is not None and self.stopping.exhausted

    def finish(self, tables, complete_epoch):
        """Training is over: the train_stats entries; the best epoch's tables put back when
        early stopping is on and the run ended at an epoch's end (a callback's stop in the
        middle of an epoch keeps the model so far, as asked)."""
        stats = {"history": self.history, "epochs_trained": len(self.history)}
        if self.stopping is not None and complete_epoch and self.stopping.best_epoch is not None:
            stats["best_epoch"] = self.stopping.best_epoch
            if self.stopping.best_epoch != self.history[-1]["epoch"]:
                self.stopping.restore(tables)
                # by number: a history may have been cut to file_schema.MAX_HISTORY epochs
                self.current = next((h for h in self.history if h["epoch"] == self.stopping.best_epoch),
                                    None)
            self.stopping.tables = None  # the copy is freed before the model is returned
        if self.validation is not None:
            metrics = self.current if complete_epoch and self.current else self.validation.evaluate()
            stats.update({k: metrics[k] for k in _METRICS})
        return stats
