"""Many independent MLPs computed as one: every weight gets a leading member axis.

`StackedDense` holds M Dense layers as one (M, in, out) kernel and computes them with one batched
matmul. Members share no parameters, so the gradient of the sum of their losses with respect to
one member's weights is exactly that member's own gradient; with an element-wise optimizer (SGD,
Adam, ...) each member trains as it would alone.

Each member's initial weights come from its own catalogue initializer, called with the member's
own layer shape and the seed `models.build` would give that layer: the same values, bit for bit.
"""

import keras
import numpy as np
from keras import ops

import initializers
from models.activations import get as get_activation


class StackedDense(keras.layers.Layer):
    """M Dense layers: inputs (M, batch, in), or (batch, in) shared by all, -> (M, batch, units).

    Args:
        kernel, bias: initial values, shapes (M, in, units) and (M, units).
        activation: a catalogue activation name, or None for the pre-activations.
        l1, l2: the kernel's L1/L2 penalty factors (see `penalty`).
    """

    def __init__(self, kernel, bias, activation=None, l1=0.0, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.kernel = self.add_weight(shape=kernel.shape, initializer=lambda shape, dtype: kernel, name="kernel")
        self.bias = self.add_weight(shape=bias.shape, initializer=lambda shape, dtype: bias, name="bias")
        self.activation = get_activation(activation) if activation else None
        self.l1, self.l2 = l1, l2

    def pre_activation(self, x):
        return ops.matmul(x, self.kernel) + self.bias[:, None, :]

    def call(self, x):
        y = self.pre_activation(x)
        return self.activation(y) if self.activation else y

    def penalty(self):
        """Per-member kernel penalty, as Keras' L1L2 regularizer adds it to the loss: shape (M,)."""
        total = ops.zeros(self.kernel.shape[0])
        if self.l1:
            total += self.l1 * ops.sum(ops.abs(self.kernel), axis=(1, 2))
        if self.l2:
            total += self.l2 * ops.sum(ops.square(self.kernel), axis=(1, 2))
        return total


class StackedMLP(keras.Model):
    """M MLPs of one shape; `call` returns the output layer's pre-activations (M, batch, units).

    The head's activation is applied by the caller, per loss, so that Keras' cross-entropies see
    the logits behind a softmax or sigmoid exactly as they do in a single model.
    """

    def __init__(self, dense_layers, **kwargs):
        super().__init__(**kwargs)
        self.dense_layers = dense_layers

    def call(self, x):
        for layer in self.dense_layers:
            x = layer(x)
        return x

    def penalty(self):
        return sum(layer.penalty() for layer in self.dense_layers)


def member_initial_weights(shape, spec, seed, layer_index, role):
    """What `models.build` gives this member's layer: its own initializer, shape and seed."""
    init = initializers.get(spec, initializers.layer_seed(seed, layer_index, role))
    return np.asarray(init(shape, dtype="float32"))


def build_stacked_mlp(members, input_dim, head, widths=(), activation="relu", l1=0.0, l2=0.0):
    """The stacked twin of `models.build_mlp` (no dropout or batch norm).

    Args:
        members: one `(kernel_initializer, bias_initializer, seed)` per member.
        input_dim: the flattened input size.
        head: the `models.losses.Head` shared by all members.
    """
    sizes = [input_dim, *widths, head.units]
    layers = []
    for i, (fan_in, units) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        kernel = np.stack([member_initial_weights((fan_in, units), k, s, i, "kernel") for k, _, s in members])
        bias = np.stack([member_initial_weights((units,), b, s, i, "bias") for _, b, s in members])
        hidden = i < len(widths)
        layers.append(StackedDense(kernel, bias, activation if hidden else None, l1, l2,
                                   name=f"hidden_{i}" if hidden else "output"))
    return StackedMLP(layers, name="stacked_mlp")
