"""The vectorized engine: the runs of a grid that share their training settings train as one
stacked model (`models.stacked`), each run one member, with results equal to the reference engine.

Runs are grouped by everything that must be shared: the data, batch size, epochs, optimizer and
learning rate, model shape and output head. Within a group, members differ in initializer, loss
and seed. Every member sees the mini-batches its run would see alone (`training.epoch_orders`),
gathered per member, so the groups need not share a seed.

One graph call trains a whole epoch. Each member's loss is the catalogue's Keras loss on its own
slice; the gradient of their sum is every member's own gradient; the optimizer is a Keras
optimizer over the stacked weights (element-wise, so per member). A member whose epoch loss is
NaN or inf is recorded as diverged and masked: its weights stop changing, the others go on. Early
stopping is Keras' rule, applied per member by the same masking, best weights restored at the end.

Training metrics are accumulated as sums over the epoch (correct counts, error sums, AUC
confusion counts at Keras' thresholds), which is what Keras' streaming metrics compute.
"""

import functools
import itertools
import json
import time

import numpy as np

from experiments.engines.diagnostics import backprop, due
from experiments.engines.procedure import MemberEarlyStopping, epoch_orders, failure_reason
from experiments.spec.budget import EVAL_CHUNK
from models.builders import MODELS
from models.metrics import METRICS, auc_thresholds

JIT = True


def _loss_key(job):
    return json.dumps(job[0].config.loss, sort_keys=True)


def group_key(run, data):
    """What the members of a stacked group share: every setting but initializers, loss and seed,
    and the output head."""
    from models import head_for

    head = head_for(data.task, run.config.loss, data.n_classes, data.n_targets)
    shared = {k: v for k, v in run.config.as_dict().items()
              if k not in ("initializer", "bias_initializer", "loss", "seed")}
    return json.dumps([shared, [head.units, head.activation, head.target]], sort_keys=True, default=str)


def train_runs(jobs, data):
    """Train `(run, recorder)` jobs group by group; a failing group records its runs as failed."""
    import keras

    from models import head_for

    groups = {}
    for run, recorder in jobs:
        head = head_for(data.task, run.config.loss, data.n_classes, data.n_targets)
        groups.setdefault(group_key(run, data), (head, []))[1].append((run, recorder))
    results = []
    for head, members in groups.values():
        # members with the same loss side by side: one loss call per contiguous slice
        members.sort(key=_loss_key)
        started = time.perf_counter()
        for _, recorder in members:
            recorder.start()
        try:
            results += Group(members, data, head).train(started)
        except OSError:
            raise  # the disk refused a record (`StorageError`): not a result of training
        except Exception as e:  # noqa: BLE001 - a failed group is data; the grid goes on
            wall = (time.perf_counter() - started) / len(members)
            results += [recorder.finish("failed", wall, reason=failure_reason(e)) for _, recorder in members]
        keras.backend.clear_session()
    return results


class Group:
    """One group's stacked model (`.model`, member m is index m of every weight) and its training loop."""

    def __init__(self, members, data, head):
        import tensorflow as tf

        from models import optimizers
        from models.losses import encode_targets
        from models.losses import get as get_loss
        from models.stacked import build_stacked_mlp

        self.tf, self.members, self.head = tf, members, head
        self.config = config = members[0][0].config
        self.size = len(members)
        flat = {split: getattr(data, f"x_{split}").reshape(len(getattr(data, f"x_{split}")), -1).astype("float32")
                for split in ("train", "val", "test")}
        self.x = {split: tf.constant(v) for split, v in flat.items()}
        self.y = {split: tf.constant(encode_targets(getattr(data, f"y_{split}"), head))
                  for split in ("train", "val", "test")}
        options = MODELS.resolve(config.model)
        self.model = build_stacked_mlp(
            [(r.config.initializer, r.config.bias_initializer, r.config.seed) for r, _ in members],
            flat["train"].shape[1], head, widths=options.get("widths", ()), activation=options.get("activation"),
            l1=options["l1"], l2=options["l2"],
        )
        self.variables = self.model.trainable_variables
        self.optimizer = optimizers.get(config.optimizer, config.learning_rate)
        self.optimizer.build(self.variables)
        # contiguous (start, stop, loss) slices; reduction=None keeps one loss per example
        self.slices, start = [], 0
        for _, same in itertools.groupby(members, key=_loss_key):
            stop = start + len(list(same))
            loss = get_loss(members[start][0].config.loss)
            loss.reduction = None
            self.slices.append((start, stop, loss))
            start = stop
        self.metrics = {name: METRICS[name] for name in config.metrics}
        needed = any(m.thresholds for m in self.metrics.values())
        self.thresholds = auc_thresholds() if needed else np.zeros(0, dtype="float32")
        self.n_stats = sum(m.columns(self.thresholds) for m in self.metrics.values())
        self.active = tf.Variable(np.ones(self.size, dtype=bool), trainable=False)
        probe = config.diagnostics.probe
        self.probe = self.x["train"][:probe], self.y["train"][:probe]
        self.backprop = tf.function(functools.partial(backprop, self._probe_forward), autograph=False)
        # XLA compiles the full-batch epoch loop (the bulk of the work, several times faster);
        # the remainder batch and evaluation run unjitted: each XLA compile costs about a second
        steps = tf.TensorSpec((self.size, None, None), tf.int32)
        self.train_full = tf.function(self._train_steps, autograph=False, jit_compile=JIT, input_signature=[steps])
        self.train_rest = tf.function(self._train_steps, autograph=False, input_signature=[steps])
        self.evaluate_chunk = tf.function(self._evaluate_chunk, autograph=False, input_signature=[
            tf.TensorSpec((None, flat["train"].shape[1]), tf.float32), tf.TensorSpec((None, head.units), tf.float32)])

    # -- graph functions -------------------------------------------------------------------

    def _outputs(self, logits):
        """The head's outputs per loss slice; activation after slicing keeps Keras' logits trick."""
        from models.activations import get as get_activation

        head_activation = get_activation(self.head.activation)
        return [head_activation(logits[a:b]) for a, b, _ in self.slices]

    def _example_losses(self, y, outputs):
        """Each member's loss on each example of its batch: (M, batch)."""
        return self.tf.concat([loss(y[a:b], out) for (a, b, loss), out in zip(self.slices, outputs, strict=True)], 0)

    def _losses(self, y, outputs):
        """Each member's mean loss on its batch plus its weight penalty, as Keras computes it: (M,)."""
        return self.tf.reduce_mean(self._example_losses(y, outputs), axis=1) + self.model.penalty()

    def _stats(self, y, p):
        """Per-member sums over the batch from which every metric follows: (M, k)."""
        columns = [column for metric in self.metrics.values() for column in metric.sums(y, p, self.thresholds)]
        return self.tf.concat(columns, axis=1) if columns else self.tf.zeros((self.size, 0))

    def _train_step(self, idx):
        """One optimizer step of every member on its batch `idx` (M, batch): (losses, stats)."""
        tf = self.tf
        x, y = tf.gather(self.x["train"], idx), tf.gather(self.y["train"], idx)
        with tf.GradientTape() as tape:
            outputs = self._outputs(self.model(x))
            losses = self._losses(y, outputs)
            total = tf.reduce_sum(losses)
        grads = tape.gradient(total, self.variables)
        before = [tf.identity(v) for v in self.variables]
        self.optimizer.apply(grads, self.variables)
        for v, old in zip(self.variables, before, strict=True):  # masked members keep their weights
            mask = tf.reshape(self.active, [-1] + [1] * (len(v.shape) - 1))
            v.assign(tf.where(mask, v, old))
        return losses, self._stats(y, tf.concat(outputs, axis=0))

    def _train_steps(self, order):
        """Train on the batches `order[:, s]` (shape (M, steps, batch)); returns loss and stat sums."""
        tf = self.tf
        batch = tf.cast(tf.shape(order)[2], "float32")

        def body(s, loss_sum, stat_sum):
            losses, stats = self._train_step(order[:, s])
            return s + 1, loss_sum + losses * batch, stat_sum + stats

        start = (tf.constant(0), tf.zeros(self.size), tf.zeros((self.size, self.n_stats)))
        _, loss_sum, stat_sum = tf.while_loop(lambda s, *_: s < tf.shape(order)[1], body, start)
        return loss_sum, stat_sum

    def _evaluate_chunk(self, x, y):
        tf = self.tf
        y = tf.broadcast_to(y[None], tf.concat([[self.size], tf.shape(y)], axis=0))
        outputs = self._outputs(self.model(x))
        return self._losses(y, outputs) * tf.cast(tf.shape(x)[0], "float32"), self._stats(y, tf.concat(outputs, 0))

    def _probe_forward(self, x):
        """Per layer pre-activations and outputs, and each member's summed loss (diagnostics)."""
        tf = self.tf
        pre, outputs = [], []
        for layer in self.model.dense_layers:
            pre.append(layer.pre_activation(x))
            x = layer.activation(pre[-1]) if layer.activation else pre[-1]
            outputs.append(x)
        heads = self._outputs(pre[-1])
        outputs[-1] = tf.concat(heads, axis=0)
        y = tf.broadcast_to(self.probe[1][None], tf.concat([[self.size], tf.shape(self.probe[1])], axis=0))
        return pre, outputs, tf.reduce_sum(self._example_losses(y, heads), axis=1)

    # -- host side ---------------------------------------------------------------------------

    def _diagnose(self, step, active):
        """Per-layer diagnostics of every active member (`experiments.diagnostics`)."""
        from experiments.engines.diagnostics import layer_kinds, measure, signals

        outputs, gradients = signals(self.backprop, self.probe[0])
        layers = self.model.dense_layers
        per_member = measure([layer.name for layer in layers], layer_kinds(self.config.model, self.head, len(layers)),
                             [layer.kernel.numpy() for layer in layers], [layer.bias.numpy() for layer in layers],
                             outputs, gradients)
        for m, (_, recorder) in enumerate(self.members):
            if active[m]:
                recorder.diagnostics(step, *per_member[m])

    def _logs(self, loss_sum, stat_sum, n, prefix=""):
        """One logs dict per member, keyed and ordered as Keras logs them (sorted names)."""
        stats, values, col = np.asarray(stat_sum, dtype="float64"), {}, 0
        for name, metric in self.metrics.items():
            width = metric.columns(self.thresholds)
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

    def train(self, started):
        config, size = self.config, self.size
        n, batch, epochs = int(self.x["train"].shape[0]), config.batch_size, config.epochs
        orders = np.stack([epoch_orders(run.config.seed, epochs, n) for run, _ in self.members])  # (M, E, n)
        full = n // batch * batch
        stopping = MemberEarlyStopping(config.early_stopping, size)
        active = np.ones(size, dtype=bool)
        every = config.diagnostics.every
        if due(0, every, epochs):
            self._diagnose(0, active)
        for epoch in range(epochs):
            order = orders[:, epoch]
            loss_sum, stat_sum = np.zeros(size), np.zeros((size, self.n_stats))
            if full:  # none when the batch size exceeds the training set: one smaller batch per epoch
                out = self.train_full(order[:, :full].reshape(size, -1, batch))
                loss_sum, stat_sum = out[0].numpy(), out[1].numpy()
            if full < n:
                rest = self.train_rest(order[:, full:].reshape(size, 1, -1))
                loss_sum, stat_sum = loss_sum + rest[0].numpy(), stat_sum + rest[1].numpy()
            train_logs, val_logs = self._logs(loss_sum, stat_sum, n), self._evaluate("val", "val_")
            weights = [v.numpy() for v in self.variables] if stopping.on else None
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
        if stopping.on:
            for v, best in zip(self.variables, stopping.restore([v.numpy() for v in self.variables]), strict=True):
                v.assign(best)
        test_logs, train_logs = self._evaluate("test"), self._evaluate("train")
        wall = (time.perf_counter() - started) / size  # the group's time, shared evenly
        return [recorder.finish("ok", wall, test=None if recorder.diverged else test_logs[m],
                                train_set=None if recorder.diverged else train_logs[m], share=1 / size)
                for m, (_, recorder) in enumerate(self.members)]
