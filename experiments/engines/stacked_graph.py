"""The vectorized engine's graph side: a group's stacked model (`models.stacked`), its Keras
optimizer over the stacked weights, each member's catalogue loss on its own slice, the metric
sums of the metric catalogue, and the graph functions (one call per epoch, XLA-compiled where
that pays: `xla_pays`; traced once for the stacks of one structure that a `Graphs` cache sees).

Each member's loss is the catalogue's Keras loss on its own slice; the gradient of their sum is
every member's own gradient; the optimizer is element-wise, so per member. Members may each have
their own learning rate: every catalogue optimizer (SGD with momentum or Nesterov, RMSprop,
Adagrad, Adadelta, Adam) uses the rate element-wise in its Keras update, so the update is given
the members' rates as a tensor that broadcasts over the member axis; scaling gradients instead
would not do (Adam and RMSprop ignore their scale). A member that is no longer active (diverged
or early-stopped) is masked: its weights stop changing.

Unjitted, a dense member trained with Adam or SGD computes what its own Keras model computes, bit
for bit, where TensorFlow's oneDNN kernels run (`TF_ENABLE_ONEDNN_OPTS=1`, which `experiments`
sets unless you set it): a oneDNN batched matmul gives each member the numbers of its own matmul,
the members' rates enter the optimizer's update as Keras' scalar does, and each bias's gradient is
Keras' own sum (`models.stacked.add_bias`). They differ by rounding with RMSprop, Adagrad and
Adadelta (TensorFlow's graph rewrites, which `as_traced` skips here, change how Keras' own graph
divides by a square root), compiled by XLA, and with TensorFlow's default Eigen kernels (a small
batched matmul sums in another order).
"""

import contextlib
import functools
import itertools
import json

import numpy as np

from experiments.engines.diagnostics import backprop
from models import optimizers
from models.activations import get as get_activation
from models.builders import MODELS
from models.losses import encode_targets
from models.losses import get as get_loss
from models.metrics import METRICS, auc_thresholds

XLA = None  # None: each group decides (`xla_pays`); True or False: every group (the tests use both)
# What XLA's compile of a group's epoch loop costs and saves on 2 CPU cores, fitted to the groups of
# `make claims`, the shipped tuning search and the default grid at 3 and 30 seeds, each group run
# both ways: the compile costs about 1 s more than the trace alone (0.3-1.6 s); each training step
# then runs faster by about 0.1 ms per weighted layer (fewer kernel calls) and by 1.5e-10 s per
# multiply-add of the whole stack's batch (fused element-wise work; measured 0.3-3e-10).
XLA_COMPILE_S, XLA_LAYER_STEP_S, XLA_MAC_S = 1.0, 1e-4, 1.5e-10


def loss_key(job):
    """What members with the same loss share (they sit side by side: one loss call per slice)."""
    return json.dumps(job[0].config.loss, sort_keys=True)


@contextlib.contextmanager
def as_traced():
    """Run graph functions as traced, without TensorFlow's graph rewrites (grappler), which run at
    a function's first call: for a group's small unjitted functions they cost more than they save
    (`make claims` trained in 55-56 s with them off, against 58-63 s, alternating runs); what XLA
    compiles never goes through them. The setting is the process's: restored on the way out."""
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


def xla_pays(model, config, n_train, members):
    """Whether XLA-compiling the epoch loop of a group of `members` runs saves more time than the
    compile costs (a choice of speed only; the results differ by rounding). A convolution always
    pays (its im2col gathers fuse: epochs 3x faster); dense layers pay with many steps, deep
    models or wide stacks. The tuning search's stacks (10 epochs, 6-24 members) train faster
    without; 150 epochs at batch 8, or 54 members, faster with."""
    layers = model.weighted
    if any(len(layer.kernel.shape) != 3 for layer in layers):  # a stacked dense kernel is (M, in, out)
        return True
    steps = config.epochs * max(1, n_train // config.batch_size)
    macs = sum(int(layer.kernel.shape[1] * layer.kernel.shape[2]) for layer in layers)  # per example
    saved = steps * (XLA_LAYER_STEP_S * len(layers) + XLA_MAC_S * members * config.batch_size * macs)
    return saved >= XLA_COMPILE_S


def _call(function, order):
    """`function(order)`; partials of it are the XLA epoch functions that call a traced one."""
    return function(order)


# What a stack's traced graph holds; a later stack of the same `structure` trains on them (`Graphs`)
GRAPH = ("x", "y", "model", "variables", "optimizer", "initial_state", "rates", "slices", "metrics", "thresholds",
         "n_stats", "active", "draws", "probe", "backprop", "train_rest", "train_full", "evaluate_chunk")


def structure(members, data, jit):
    """What a stack's traced graph depends on: every setting but the members' initializers,
    learning rates and seeds (which it holds as values: with dropout, whose mask seeds are in the
    graph, the seeds too) and the batch size and epochs (which it takes as inputs); each member's
    loss and activation in order; the data (captured as constants); whether XLA compiles it."""
    config = members[0][0].config
    dropout = bool(MODELS.resolve(config.model).get("dropout"))
    shared = {k: v for k, v in config.as_dict().items()
              if k not in ("initializer", "bias_initializer", "learning_rate", "seed", "batch_size", "epochs", "loss")}
    own = [[run.config.loss, MODELS.resolve(run.config.model).get("activation"), run.config.seed if dropout else None]
           for run, _ in members]
    return json.dumps([id(data), shared, own, jit], sort_keys=True, default=str)


class Graphs:
    """The traced graphs of recent stacks (the `keep` latest structures), for later stacks of the
    same structure: a tuning search trains stacks of a few structures again and again (each batch
    size, each round), and a trace costs 0.3-0.5 s. A reused graph starts from the new stack's own
    initial weights, learning rates and a fresh optimizer state, so it trains as a new one would.
    The cached graphs share one copy of each dataset."""

    def __init__(self, keep=4):
        self.keep, self.graphs = keep, {}

    def take(self, key):
        return self.graphs.pop(key, None)

    def put(self, key, graph):
        self.graphs[key] = graph
        while len(self.graphs) > self.keep:
            del self.graphs[next(iter(self.graphs))]  # the least recently used

    def constants(self, data, head):
        """The (x, y) constants of a cached graph on the same data and head, else None."""
        return next(((g.x, g.y) for g in self.graphs.values() if g.data is data and g.head == head), None)


class StackedGraph:
    """A group's stacked model (`.model`: member m is index m of every weight), its optimizer, and
    the graph functions that train and evaluate every member at once. `group_size`: the runs of
    the whole group when these members are one of its stacks or shards (it compiles as the whole
    would, so every member computes alike however the group is split). `graphs`: a `Graphs` cache
    to take a traced graph of this structure from, and to leave this one in."""

    def __init__(self, members, data, head, group_size=None, graphs=None):
        import tensorflow as tf

        from models.stacked import build_stacked  # imports Keras

        self.tf, self.members, self.head, self.data = tf, members, head, data
        self.config = config = members[0][0].config
        self.size = len(members)
        model = build_stacked(
            MODELS.parse(config.model)["name"], MODELS.resolve(config.model),
            [(r.config.initializer, r.config.bias_initializer, r.config.seed) for r, _ in members],
            tuple(data.input_shape), head, [MODELS.resolve(r.config.model).get("activation") for r, _ in members])
        self.jit = xla_pays(model, config, len(data.x_train), group_size or self.size) if XLA is None else XLA
        key = structure(members, data, self.jit)
        cached = graphs.take(key) if graphs is not None else None
        if cached is not None:
            self._reuse(cached, model)
        else:
            self._build(model, graphs.constants(data, head) if graphs is not None else None)
        if graphs is not None:
            graphs.put(key, self)

    def _reuse(self, cached, model):
        """Take `cached`'s graph, set to this stack's start: `model`'s initial weights, the
        optimizer's state as built, the members' learning rates, every member active."""
        for name in GRAPH:
            setattr(self, name, getattr(cached, name))
        self.model.set_weights(model.get_weights())
        for variable, value in zip(self.optimizer.variables, self.initial_state, strict=True):
            variable.assign(value)
        self.rates.assign([r.config.learning_rate for r, _ in self.members])
        self.active.assign(np.ones(self.size, dtype=bool))
        self.draws.assign(0)

    def _build(self, model, constants=None):
        """Build the optimizer and trace the graph functions around `model` (`constants`: the
        data's (x, y) constants, when another graph has them)."""
        from models.stacked import StackedDropout  # imports Keras

        tf, config, data, head, members = self.tf, self.config, self.data, self.head, self.members
        splits = ("train", "val", "test")
        self.x, self.y = constants or (
            {split: tf.constant(getattr(data, f"x_{split}").astype("float32")) for split in splits},
            {split: tf.constant(encode_targets(getattr(data, f"y_{split}"), head)) for split in splits})
        self.model = model
        self.variables = self.model.trainable_variables
        self.optimizer = optimizers.get(config.optimizer, 1.0)  # its own rate unused: the members' below
        self.optimizer.build(self.variables)
        update = self.optimizer.update_step  # Keras' update, given each member's own rate
        self.optimizer.update_step = lambda grad, v, _: update(grad, v, self._per_member(self.rates, v))
        self.initial_state = [variable.numpy() for variable in self.optimizer.variables]
        self.rates = tf.Variable([r.config.learning_rate for r, _ in members], dtype=tf.float32, trainable=False)
        # contiguous (start, stop, loss) slices; reduction=None keeps one loss per example
        self.slices, start = [], 0
        for _, same in itertools.groupby(members, key=loss_key):
            stop = start + len(list(same))
            loss = get_loss(members[start][0].config.loss)
            loss.reduction = None
            self.slices.append((start, stop, loss))
            start = stop
        self.metrics = {name: METRICS[name] for name in config.metrics}
        needed = any(m.thresholds for m in self.metrics.values())
        self.thresholds = auc_thresholds() if needed else np.zeros(0, dtype="float32")
        self.n_stats = sum(m.columns(self.thresholds, self.head.units) for m in self.metrics.values())
        self.active = tf.Variable(np.ones(self.size, dtype=bool), trainable=False)
        self.draws = tf.Variable(0, dtype=tf.int64, trainable=False)  # training steps taken: seeds dropout
        probe = config.diagnostics.probe
        self.probe = self.x["train"][:probe], self.y["train"][:probe]
        self.backprop = tf.function(functools.partial(backprop, self._probe_forward), autograph=False)
        # Where it pays (`xla_pays`), XLA compiles the full-batch epoch loop (the bulk of the
        # work); the remainder batch and evaluation run unjitted. Both epoch functions then run one
        # trace of the steps (a trace costs about 0.3-0.5 s), except with dropout: XLA must see
        # the shape of its random masks as a constant, which it cannot through a call. (Each
        # group's functions wrap its own partials: TensorFlow counts traces per Python function,
        # and would warn of "retracing" after a few groups.)
        steps = tf.TensorSpec((self.size, None, None), tf.int32)
        train = functools.partial(StackedGraph._train_steps, self)
        self.train_rest = tf.function(train, autograph=False, input_signature=[steps])
        if not self.jit:
            self.train_full = self.train_rest
        else:
            if not any(isinstance(layer, StackedDropout) for layer in self.model.stacked_layers):
                train = functools.partial(_call, self.train_rest.get_concrete_function())
            self.train_full = tf.function(train, autograph=False, jit_compile=True, input_signature=[steps])
        self.evaluate_chunk = tf.function(functools.partial(StackedGraph._evaluate_chunk, self), autograph=False,
                                          input_signature=[
            tf.TensorSpec((None, *data.input_shape), tf.float32), tf.TensorSpec((None, head.units), tf.float32)])

    # -- graph functions -------------------------------------------------------------------

    def _outputs(self, logits):
        """The head's outputs per loss slice; activation after slicing keeps Keras' logits trick."""
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
        scale = self.tf.constant(np.asarray(self.data.target_scale, dtype="float32"))
        columns = [column for metric in self.metrics.values()
                   for column in metric.sums(*((y * scale, p * scale) if metric.raw else (y, p)), self.thresholds)]
        return self.tf.concat(columns, axis=1) if columns else self.tf.zeros((self.size, 0))

    def _train_step(self, idx):
        """One optimizer step of every member on its batch `idx` (M, batch): (losses, stats)."""
        tf = self.tf
        x, y = tf.gather(self.x["train"], idx), tf.gather(self.y["train"], idx)
        averages = self.model.non_trainable_variables  # batch norm's, moved by the forward pass
        kept = [tf.identity(v) for v in averages]
        with tf.GradientTape() as tape:
            outputs = self._outputs(self.model(x, draw=self.draws.assign_add(1) - 1))
            losses = self._losses(y, outputs)
            total = tf.reduce_sum(losses)
        grads = tape.gradient(total, self.variables)
        before = [tf.identity(v) for v in self.variables]
        self.optimizer.apply(grads, self.variables)
        for v, old in zip(self.variables, before, strict=True):
            v.assign(tf.where(self._per_member(self.active, v), v, old))  # masked members keep theirs
        for v, old in zip(averages, kept, strict=True):
            v.assign(tf.where(self._per_member(self.active, v), v, old))
        return losses, self._stats(y, tf.concat(outputs, axis=0))

    def _per_member(self, values, like):
        """(M,) values shaped to broadcast over a stacked weight `like`."""
        return self.tf.reshape(values, [-1] + [1] * (len(like.shape) - 1))

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
        from models.stacked import StackedBatchNorm

        tf = self.tf
        pre, outputs, weighted = [], [], self.model.weighted
        for layer in self.model.stacked_layers:
            if layer not in weighted:  # pooling, flattening, dropout; batch norm replaces the layer's output
                x = layer(x)
                if isinstance(layer, StackedBatchNorm):
                    outputs[-1] = x
                continue
            pre.append(layer.pre_activation(x))
            x = layer.activation(pre[-1]) if layer.activation else pre[-1]
            outputs.append(x)
        heads = self._outputs(pre[-1])
        outputs[-1] = tf.concat(heads, axis=0)
        y = tf.broadcast_to(self.probe[1][None], tf.concat([[self.size], tf.shape(self.probe[1])], axis=0))
        return pre, outputs, tf.reduce_sum(self._example_losses(y, heads), axis=1)
