"""Many independent models of one shape computed as one: every weight gets a leading member axis.

`StackedDense` holds M Dense layers as one (M, in, out) kernel and computes them with one batched
matmul; `StackedConv2D` does the same for convolutions (one matmul of the shifted windows), with each
member's pooling and flattening between (`StackedPool`, `StackedFlatten`), batch norm with each
member's own batch statistics and moving averages (`StackedBatchNorm`) and dropout with each
member's own masks (`StackedDropout`); members may differ in their hidden activation
(`member_activation`). Members share no parameters, so the gradient of the sum of
their losses with respect to one member's weights is exactly that member's own gradient; with an
element-wise optimizer (SGD, Adam, ...) each member trains as it would alone.

A training call passes `draw`, the number of the training step (it seeds the dropout masks); a
call without it is inference (moving averages, no dropout), as Keras' `training=False`.

Each member's initial weights come from its own catalogue initializer, called with the member's
own layer shape and the seed `models.build` would give that layer: the same values, bit for bit.
"""

import itertools
import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import initializers
from models.activations import get as get_activation


def member_activation(names):
    """Each member's activation as one callable on a stacked tensor (member axis first): `names`
    is one catalogue name (or None: no activation) for every member, or a list with one per
    member, applied one call per contiguous run of members that share it (elementwise, so each
    member's values are what its own activation gives)."""
    names = [names] if names is None or isinstance(names, str) else names
    if len(set(names)) == 1:
        return get_activation(names[0]) if names[0] else None
    runs, start = [], 0
    for name, same in itertools.groupby(names):
        stop = start + len(list(same))
        runs.append((start, stop, get_activation(name or "linear")))
        start = stop

    def apply(x):
        return ops.concatenate([function(x[a:b]) for a, b, function in runs], axis=0)

    return apply


class Weighted(keras.layers.Layer):
    """M layers of one shape with a kernel and a bias: member m is index m of both.

    Args:
        kernel, bias: initial values, shapes (M, ..., units) and (M, units).
        activation: a catalogue activation name, or None for the pre-activations; or one per
            member (`member_activation`).
        l1, l2: the kernel's L1/L2 penalty factors (see `penalty`).
    """

    def __init__(self, kernel, bias, activation=None, l1=0.0, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.kernel = self.add_weight(shape=kernel.shape, initializer=lambda shape, dtype: kernel, name="kernel")
        self.bias = self.add_weight(shape=bias.shape, initializer=lambda shape, dtype: bias, name="bias")
        self.activation = member_activation(activation)
        self.l1, self.l2 = l1, l2

    def call(self, x, draw=None):
        y = self.pre_activation(x)
        return self.activation(y) if self.activation else y

    def penalty(self):
        """Per-member kernel penalty, as Keras' L1L2 regularizer adds it to the loss: shape (M,)."""
        total, axes = ops.zeros(self.kernel.shape[0]), tuple(range(1, len(self.kernel.shape)))
        if self.l1:
            total += self.l1 * ops.sum(ops.abs(self.kernel), axis=axes)
        if self.l2:
            total += self.l2 * ops.sum(ops.square(self.kernel), axis=axes)
        return total


class StackedDense(Weighted):
    """M Dense layers: inputs (M, batch, in), or (batch, in) shared by all, -> (M, batch, units);
    kernel (M, in, units)."""

    def pre_activation(self, x):
        return add_bias(ops.matmul(x, self.kernel), tf.convert_to_tensor(self.bias))


@tf.custom_gradient
def add_bias(y, bias):
    """`y` (M, batch, units) plus each member's `bias` (M, units). The bias's gradient is what
    Keras' Dense computes for each member (TensorFlow's BiasAddGrad: the bias is added by
    `tf.nn.bias_add`), for all members at once with each member's units as further columns (the
    same sums, bit for bit; a batched sum over the middle axis adds in another order)."""
    def grad(dy):
        columns = tf.reshape(tf.transpose(dy, [1, 0, 2]), [tf.shape(dy)[1], -1])  # (batch, M * units)
        return dy, tf.reshape(tf.raw_ops.BiasAddGrad(out_backprop=columns), tf.shape(bias))
    return y + bias[:, None, :], grad


class StackedConv2D(Weighted):
    """M same-padded Conv2D layers: inputs (M, batch, H, W, C), or (batch, H, W, C) shared by all,
    -> (M, batch, H, W, filters); kernel (M, k, k, C, filters). Computed as im2col from slices: the
    image shifted to each of the k*k kernel offsets, side by side, times the (k*k*C, filters)
    kernel, one batched matmul (`im2col_conv`). Under XLA on a CPU the per-offset form, k*k matmuls
    summed, was about 120 times faster than one grouped convolution and twice as fast as im2col
    by `tf.image.extract_patches` (`experiments.benchmarks.stacked_conv`); the slices' im2col
    trained the shipped CNN grid in 13.9-14.1 s against 15.4-16.6 s for the per-offset form.
    """

    def pre_activation(self, x):
        members, height, width, filters = self.kernel.shape[0], *x.shape[-3:-1], self.kernel.shape[-1]
        return ops.reshape(im2col_conv(x, self.kernel) + self.bias[:, None, :], (members, -1, height, width, filters))


def im2col_conv(x, kernel):
    """M same-padded convolutions without bias, as one batched matmul of the k*k shifted windows side
    by side (im2col): x (M, batch, H, W, C) or (batch, H, W, C) shared, kernel (M, k, k, C, F)
    -> (M, batch*H*W, F)."""
    members, k, _, channels, _ = kernel.shape
    shared = len(x.shape) == 4
    height, width = x.shape[-3:-1]
    low = (k - 1) // 2  # TensorFlow's SAME padding: the odd one after
    pad = [[low, k - 1 - low]] * 2
    padded = ops.pad(x, [[0, 0], *pad, [0, 0]] if shared else [[0, 0], [0, 0], *pad, [0, 0]])
    patches = ops.concatenate([padded[..., dy:dy + height, dx:dx + width, :] for dy in range(k) for dx in range(k)],
                              axis=-1)
    return ops.matmul(ops.reshape(patches, (-1, k * k * channels) if shared else (members, -1, k * k * channels)),
                      ops.reshape(kernel, (members, k * k * channels, kernel.shape[-1])))


class StackedBatchNorm(keras.layers.Layer):
    """M BatchNormalization layers (Keras' defaults) over (M, batch, units), each followed by the
    activation: in training each member normalizes by its own batch's mean and variance and moves
    its own averages; in inference it uses those averages. Weights: gamma, beta, moving_mean and
    moving_variance, each (M, units), in Keras' order."""

    def __init__(self, members, units, activation, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon = momentum, epsilon
        self.activation = member_activation(activation)
        for name, value, trainable in (("gamma", 1.0, True), ("beta", 0.0, True), ("moving_mean", 0.0, False),
                                       ("moving_variance", 1.0, False)):
            setattr(self, name, self.add_weight(shape=(members, units), initializer=keras.initializers.Constant(value),
                                                trainable=trainable, name=name))

    def call(self, x, draw=None):
        if draw is None:
            mean, variance = self.moving_mean[:, None], self.moving_variance[:, None]
        else:
            mean, variance = ops.moments(x, axes=[1], keepdims=True)
            for average, value in ((self.moving_mean, mean[:, 0]), (self.moving_variance, variance[:, 0])):
                average.assign(average * self.momentum + value * (1.0 - self.momentum))
        y = ops.batch_normalization(x, mean, variance, axis=-1, offset=self.beta[:, None], scale=self.gamma[:, None],
                                    epsilon=self.epsilon)
        return self.activation(y)


class StackedDropout(keras.layers.Layer):
    """M Dropout layers over (M, batch, units): in training each member's mask is drawn from its own
    run seed, this layer's index and the step (`draw`), so a member's masks do not depend on which
    other members share its stack; members with one seed share their masks, as Keras' Dropout(seed=)
    layers do. Keras' own draws cannot be matched: runs agree with the Keras engine in distribution."""

    def __init__(self, rate, seeds, index, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seeds, self.index = rate, [int(s) for s in seeds], index

    def call(self, x, draw=None):
        if draw is None:
            return x
        import tensorflow as tf

        stream = ops.cast(draw, "int64") * 1024 + self.index  # one stream per (step, layer)
        shape = ops.shape(x)[1:]

        def mask(seed):
            return tf.random.stateless_uniform(shape, seed=ops.stack([seed, stream]), alg="philox") >= self.rate

        keep = tf.map_fn(mask, ops.convert_to_tensor(self.seeds, "int64"), fn_output_signature=tf.bool)
        return ops.where(keep, x / (1.0 - self.rate), ops.zeros_like(x))


class StackedPool(keras.layers.Layer):
    """Each member's 2x2 max-pool (same padding): (M, batch, H, W, C) -> (M, batch, H/2, W/2, C)."""

    def call(self, x, draw=None):
        y = ops.max_pool(ops.reshape(x, (-1, *x.shape[2:])), 2, 2, padding="same")
        return ops.reshape(y, (x.shape[0], -1, *y.shape[1:]))


class StackedFlatten(keras.layers.Layer):
    """Each member's Flatten: examples of rank `rank` -> vectors; (batch, ...) shared inputs stay
    shared."""

    def __init__(self, rank, **kwargs):
        super().__init__(**kwargs)
        self.rank = rank

    def call(self, x, draw=None):
        if len(x.shape) == self.rank + 1:
            return ops.reshape(x, (-1, math.prod(x.shape[1:])))
        return ops.reshape(x, (x.shape[0], -1, math.prod(x.shape[2:])))


class StackedModel(keras.Model):
    """M models of one shape; `call` returns the output layer's pre-activations (M, batch, units).
    `weighted` are the layers with weights (dense and convolution), in order.

    The head's activation is applied by the caller, per loss, so that Keras' cross-entropies see
    the logits behind a softmax or sigmoid exactly as they do in a single model.
    """

    def __init__(self, stacked_layers, **kwargs):
        super().__init__(**kwargs)
        self.stacked_layers = stacked_layers

    @property
    def weighted(self):
        return [layer for layer in self.stacked_layers if isinstance(layer, Weighted)]

    def call(self, x, draw=None):
        for layer in self.stacked_layers:
            x = layer(x, draw=draw)
        return x

    def penalty(self):
        return sum(layer.penalty() for layer in self.weighted)


def member_initial_weights(shape, spec, seed, layer_index, role):
    """What `models.build` gives this member's layer: its own initializer, shape and seed."""
    init = initializers.get(spec, initializers.layer_seed(seed, layer_index, role))
    return np.asarray(init(shape, dtype="float32"))


def _stacked(layer, members, shapes, i, **options):
    """Stacked layer `layer` (StackedDense or StackedConv2D) number `i` of the model: each member's
    kernel and bias as `models.build` gives them."""
    kernel_shape, units = shapes
    kernel = np.stack([member_initial_weights(kernel_shape, k, s, i, "kernel") for k, _, s in members])
    bias = np.stack([member_initial_weights((units,), b, s, i, "bias") for _, b, s in members])
    return layer(kernel, bias, **options)


def build_stacked(name, model, members, input_shape, head, activations=None):
    """The stacked twin of `models.build` for a catalogue model (`mlp`, `linear`, `cnn`): the same
    layers in the same order, each weight with a leading member axis.

    Args:
        name, model: the catalogue model's name and its resolved options (`MODELS.resolve`).
        members: one `(kernel_initializer, bias_initializer, seed)` per member.
        input_shape: one example's shape.
        head: the `models.losses.Head` shared by all members.
        activations: each member's hidden activation (members may differ in it), else the model's.
    """
    activation, l1, l2 = activations or model.get("activation"), model["l1"], model["l2"]
    dropout, batch_norm, seeds = model.get("dropout", 0.0), model.get("batch_norm", False), [s for _, _, s in members]
    layers, i = [], 0
    channels = input_shape[-1]
    for filters in model.get("filters", ()) if name == "cnn" else ():
        k = model["kernel_size"]
        layers += [_stacked(StackedConv2D, members, ((k, k, channels, filters), filters), i, activation=activation,
                            l1=l1, l2=l2, name=f"hidden_{i}"), StackedPool()]
        channels, i = filters, i + 1
    if len(input_shape) > 1:
        layers.append(StackedFlatten(len(input_shape)))
    fan_in = math.prod(input_shape)
    if name == "cnn":  # each 2x2 pool (same padding) halves the image, rounding up
        height, width = input_shape[:2]
        for _ in model["filters"]:
            height, width = (height + 1) // 2, (width + 1) // 2
        fan_in = height * width * channels
    for width in model.get("widths", ()):
        # batch norm normalises the pre-activations, so the activation comes after the norm
        layers.append(_stacked(StackedDense, members, ((fan_in, width), width), i,
                               activation=None if batch_norm else activation, l1=l1, l2=l2, name=f"hidden_{i}"))
        if batch_norm:
            layers.append(StackedBatchNorm(len(members), width, activation))
        if dropout:
            layers.append(StackedDropout(dropout, seeds, i))
        fan_in, i = width, i + 1
    layers.append(_stacked(StackedDense, members, ((fan_in, head.units), head.units), i, l1=l1, l2=l2,
                           name="output"))
    return StackedModel(layers, name=f"stacked_{name}")
