"""The vectorized engine: the runs of a grid that share their training settings train as one
stacked model (`models.stacked`), each run one member, with results equal to the reference engine.

Runs are grouped by everything that must be shared: the data, batch size, epochs, optimizer,
model shape and output head. Within a group, members differ in initializer, loss, learning rate
(`stacked_graph` gives each member's optimizer step its own) and seed. Every member sees the
mini-batches its run would see alone (`procedure.epoch_orders`), gathered per member, so the
groups need not share a seed.

One graph call trains a whole epoch (`stacked_graph`). A member whose epoch loss is NaN or inf
is recorded as diverged and masked: its weights stop changing, the others go on. Early stopping
is Keras' rule, applied per member by the same masking, best weights restored at the end.

Training metrics are accumulated as sums over the epoch (the metric catalogue's sums: correct
counts, error sums, AUC confusion counts at Keras' thresholds), which is what Keras' streaming
metrics compute.
"""

import itertools
import json
import time

import numpy as np

from experiments.engines import keras_fit
from experiments.engines.diagnostics import due, layer_kinds, measure, signals
from experiments.engines.procedure import (
    MemberEarlyStopping,
    clear_keras_session,
    epoch_orders,
    failure_reason,
    steps_per_epoch,
)
from experiments.engines.stacked_graph import StackedGraph, as_traced, loss_key
from experiments.spec.budget import EVAL_CHUNK
from models import head_for
from models.builders import MODELS


def group_key(run, data):
    """What the members of a stacked group share: every setting but initializers, loss, learning
    rate, seed and the model's hidden activation, and the output head."""

    head = head_for(data.task, run.config.loss, data.n_classes, data.n_targets)
    shared = {k: v for k, v in run.config.as_dict().items()
              if k not in ("initializer", "bias_initializer", "loss", "learning_rate", "seed")}
    shared["model"] = {k: v for k, v in MODELS.resolve(run.config.model).items() if k != "activation"}
    return json.dumps([shared, [head.units, head.activation, head.target]], sort_keys=True, default=str)


def train_runs(jobs, data, group_size=None):
    """Train `(run, recorder)` jobs group by group; a failing group records its runs as failed.
    `group_size`: the runs of the whole group when the jobs are one of its stacks or shards."""
    groups = {}
    for run, recorder in jobs:
        head = head_for(data.task, run.config.loss, data.n_classes, data.n_targets)
        groups.setdefault(group_key(run, data), (head, []))[1].append((run, recorder))
    results = []
    for head, members in groups.values():
        # members with the same loss side by side: one loss call per contiguous slice
        members.sort(key=loss_key)
        started = time.perf_counter()
        for _, recorder in members:
            recorder.start()
        try:
            results += Group(members, data, head, group_size).train(started)
        except OSError:
            raise  # the disk refused a record (`StorageError`): not a result of training
        except Exception as e:  # noqa: BLE001 - a failed group is data; the grid goes on
            wall = (time.perf_counter() - started) / len(members)
            results += [recorder.finish("failed", wall, reason=failure_reason(e)) for _, recorder in members]
        clear_keras_session()
    return results


class Group(StackedGraph):
    """One group's stacked model and its training loop: every epoch's batches in each member's own
    order, the members' records, early stopping and diagnostics (the graph functions are
    `StackedGraph`'s)."""

    snapshot = None  # the stacked weights as arrays, while they are unchanged (`stacked_weights`)

    def _diagnose(self, step, active):
        """Per-layer diagnostics of every active member (`experiments.diagnostics`), measured per
        run of members that share an activation (it decides what counts as saturated)."""
        outputs, gradients = signals(self.backprop, self.probe[0])
        layers = self.model.weighted
        names, kernels, biases = [layer.name for layer in layers], [layer.kernel.numpy() for layer in layers], \
            [layer.bias.numpy() for layer in layers]
        per_member, start = [], 0
        for _, same in itertools.groupby(self.members, key=lambda job: json.dumps(job[0].config.model, sort_keys=True)):
            run = slice(start, start + len(list(same)))
            kinds = layer_kinds(self.members[run.start][0].config.model, self.head, len(layers))
            per_member += measure(names, kinds, *([a[run] for a in arrays] for arrays in
                                                  (kernels, biases, outputs, gradients)))
            start = run.stop
        for m, (_, recorder) in enumerate(self.members):
            if active[m]:
                recorder.diagnostics(step, *per_member[m])

    def _logs(self, loss_sum, stat_sum, n, prefix=""):
        """One logs dict per member, keyed and ordered as Keras logs them (sorted names)."""
        stats, values, col = np.asarray(stat_sum, dtype="float64"), {}, 0
        for name, metric in self.metrics.items():
            width = metric.columns(self.thresholds, self.head.units)
            values[name] = metric.value(stats[:, col:col + width], n, self.thresholds)
            col += width
        values["loss"] = np.asarray(loss_sum, dtype="float64") / n
        return [{prefix + k: float(values[k][m]) for k in sorted(values)} for m in range(self.size)]

    def _evaluate(self, split, prefix=""):
        n = int(self.x[split].shape[0])
        loss_sum, stat_sum = 0.0, 0.0
        for start in range(0, n, EVAL_CHUNK):
            out = self.evaluate_chunk(self.x[split][start:start + EVAL_CHUNK], self.y[split][start:start + EVAL_CHUNK])
            loss_sum, stat_sum = loss_sum + out[0].numpy(), stat_sum + out[1].numpy()
        return self._logs(loss_sum, stat_sum, n, prefix)

    def train(self, started, finish=True, initial_epoch=0):
        """Train every member; with `finish`, restore early-stopped members' best weights, evaluate
        and finish each run's record (returns the results), else leave that to the caller (a
        tuner trial's record is finished once its oracle has scored it). `initial_epoch`: epochs
        already trained (a continued Hyperband trial), whose batch orders are skipped."""
        with as_traced():
            return self._train(started, finish, initial_epoch)

    def _train(self, started, finish, initial_epoch):
        config, size = self.config, self.size
        n, batch, epochs = int(self.x["train"].shape[0]), config.batch_size, config.epochs
        orders = np.stack([epoch_orders(run.config.seed, epochs, n) for run, _ in self.members])  # (M, E, n)
        full = n // batch * batch
        stopping = MemberEarlyStopping(config.early_stopping, size)
        self.draws.assign(initial_epoch * steps_per_epoch(n, batch))
        active = np.ones(size, dtype=bool)
        every = config.diagnostics.every
        if due(0, every, epochs) and not initial_epoch:
            self._diagnose(0, active)
        for epoch in range(initial_epoch, epochs):
            order = orders[:, epoch]
            loss_sum, stat_sum = np.zeros(size), np.zeros((size, self.n_stats))
            self.snapshot = None  # the weights change
            if full:  # none when the batch size exceeds the training set: one smaller batch per epoch
                out = self.train_full(order[:, :full].reshape(size, -1, batch))
                loss_sum, stat_sum = out[0].numpy(), out[1].numpy()
            if full < n:
                rest = self.train_rest(order[:, full:].reshape(size, 1, -1))
                loss_sum, stat_sum = loss_sum + rest[0].numpy(), stat_sum + rest[1].numpy()
            train_logs, val_logs = self._logs(loss_sum, stat_sum, n), self._evaluate("val", "val_")
            weights = self.stacked_weights() if stopping.on else None
            stopped = np.zeros(size, dtype=bool)
            for m, (_, recorder) in enumerate(self.members):
                if not active[m]:
                    continue
                logs = {**train_logs[m], **val_logs[m]}
                if not recorder.epoch(logs):
                    active[m] = False  # diverged
                else:
                    stopped[m] = stopping.stop(m, epoch, logs, weights)
            if due(epoch + 1, every, epochs) and active.any():
                self._diagnose(epoch + 1, active)  # early-stopped members too, as in Keras
            active &= ~stopped
            if not active.any():
                break
            self.active.assign(active)
        if not finish:
            return None
        if stopping.on:
            for v, best in zip(self.model.weights, stopping.restore([v.numpy() for v in self.model.weights]),
                               strict=True):
                v.assign(best)
            self.snapshot = None
        test_logs, train_logs = self._evaluate("test"), self._evaluate("train")
        wall = (time.perf_counter() - started) / size  # the group's time, shared evenly
        return [recorder.finish("ok", wall, test=None if recorder.diverged else test_logs[m],
                                train_set=None if recorder.diverged else train_logs[m], share=1 / size,
                                model=self.member_model(m) if recorder.saves_model and not recorder.diverged
                                else None)
                for m, (_, recorder) in enumerate(self.members)]

    def load_member(self, m, weights):
        """Set member m's weights to a Keras model's (`get_weights()` order: the stacked model's)."""
        self.snapshot = None
        for variable, value in zip(self.model.weights, weights, strict=True):
            stacked = np.asarray(variable).copy()
            stacked[m] = value
            variable.assign(stacked)

    def stacked_weights(self):
        """Every stacked weight as an array, read once per change (the members of a tuning stack
        each keep their best epoch's weights: one read of the stack per epoch, not one per member)."""
        if self.snapshot is None:
            self.snapshot = [np.asarray(variable) for variable in self.model.weights]
        return self.snapshot

    def member_weights(self, m):
        """Member m's weights, in a Keras model's `get_weights()` order."""
        return [weight[m].copy() for weight in self.stacked_weights()]

    def member_model(self, m):
        """Member m unstacked: exactly the compiled model the Keras engine builds for its run, with
        the member's trained weights and optimizer state)."""
        config = self.members[m][0].config
        model, _ = keras_fit.build_model(config, self.data)
        model.set_weights(self.member_weights(m))
        model.optimizer.build(model.trainable_variables)
        for mine, stacked in zip(model.optimizer.variables, self.optimizer.variables, strict=True):
            if stacked.name == "learning_rate":  # the member's own, as built (the stacked one is unused)
                continue
            value = np.asarray(stacked)  # a slot has the member axis; the step count is shared
            mine.assign(value[m] if value.ndim == len(mine.shape) + 1 else value)
        return model
