"""Per-layer diagnostics measured on a fixed probe batch: what initialization does to a network,
layer by layer. The quantities and their definitions are `experiments.spec.diagnostics`.

Kernel and bias histograms go to TensorBoard beside them. Everything works on arrays with a
leading member axis, so the vectorized engine measures all its members at once and the reference
engine is the case of one member.
"""

import numpy as np

from experiments.spec.diagnostics import DEAD, SATURATED, SATURATED_SHARE, SYMMETRY_RTOL


def due(epoch, every, epochs):
    """Diagnostics run at step 0, every `every` epochs and after the last epoch (0 = never)."""
    return every > 0 and (epoch % every == 0 or epoch == epochs)


def backprop(forward, x):
    """Run `forward(x) -> (pre-activations, outputs, per-member loss sums)` under a tape.

    Returns:
        (outputs, back-propagated gradients): tensors, one per weighted layer.
    """
    import tensorflow as tf

    with tf.GradientTape() as tape:
        pre, outputs, losses = forward(x)
        total = tf.reduce_sum(losses)
    return outputs, tape.gradient(total, pre)


def signals(backprop_fn, x):
    """`backprop_fn(x)` (`backprop`, possibly as a graph function) as numpy arrays."""
    outputs, gradients = backprop_fn(x)
    return [np.asarray(a) for a in outputs], [np.asarray(g) for g in gradients]


def distinct_units(kernel, bias):
    """(M, ..., units) kernels and (M, units) biases -> (M,) number of distinct units.

    Units are sorted by a random projection of their weights (equal units project next to each
    other), then each unit is compared with its neighbour in that order: O(units log units).
    """
    members, units = bias.shape
    weights = np.concatenate([kernel.reshape(members, -1, units), bias[:, None, :]], axis=1).astype("float64")
    tolerance = SYMMETRY_RTOL * np.abs(weights).max(axis=(1, 2))[:, None]
    direction = np.random.default_rng(0).standard_normal(weights.shape[1])
    order = np.argsort(np.einsum("mdu,d->mu", weights, direction), axis=1)
    ordered = np.take_along_axis(weights, order[:, None, :], axis=2)
    same = np.abs(np.diff(ordered, axis=2)).max(axis=1) <= tolerance
    return 1 + (~same).sum(axis=1)


def histograms(values, buckets=30):
    """(M, n) values -> (M, buckets, 3) tables of [left edge, right edge, count], TensorBoard's
    histogram format: equal-width buckets from min to max (the last one closed); when all values
    are equal, every edge is that value and the last bucket holds them all. Non-finite values
    (a diverging run) are left out."""
    finite = np.isfinite(values)
    low = np.where(finite, values, np.inf).min(axis=1)
    high = np.where(finite, values, -np.inf).max(axis=1)
    low, high = np.where(finite.any(axis=1), low, 0.0), np.where(finite.any(axis=1), high, 0.0)
    width = np.where(high > low, (high - low) / buckets, 1.0)
    edges = low[:, None] + width[:, None] * np.arange(buckets + 1)
    edges[high == low] = low[high == low, None]
    index = np.clip(((np.where(finite, values, low[:, None]) - low[:, None]) / width[:, None]).astype(int),
                    0, buckets - 1)
    index[high == low] = buckets - 1
    index = index + buckets * np.arange(len(values))[:, None]  # one bincount for every member
    counts = np.bincount(index[finite], minlength=buckets * len(values)).reshape(len(values), buckets)
    return np.stack([edges[:, :-1], edges[:, 1:], counts], axis=2)


def measure(names, kinds, kernels, biases, outputs, gradients):
    """Per member: (scalars, histogram tables) dicts keyed `<quantity>/<layer>`.

    Args:
        names, kinds: each weighted layer's name and activation name (the last is the output).
        kernels, biases, outputs, gradients: per layer, numpy arrays with a leading member axis.
    """
    members = biases[0].shape[0]
    scalars, tables = [{} for _ in range(members)], [{} for _ in range(members)]

    def put(key, values):
        for m in range(members):
            scalars[m][key] = float(values[m])

    spread = []
    # a diverging run's activations hold inf and NaN: its statistics are inf or NaN, not errors
    with np.errstate(all="ignore"):
        for i, (name, kind, kernel, bias, out, grad) in enumerate(
                zip(names, kinds, kernels, biases, outputs, gradients, strict=True)):
            units = bias.shape[1]
            out, grad = out.reshape(members, -1, units).astype("float64"), grad.astype("float64")
            if kind != "softmax":  # a softmax's mean output is 1/units whatever the weights: no information
                put(f"activation_mean/{name}", out.mean(axis=(1, 2)))
            put(f"activation_std/{name}", out.std(axis=(1, 2)))
            spread.append(grad.reshape(members, -1).std(axis=1))
            put(f"gradient_std/{name}", spread[-1])
            if i < len(names) - 1:
                if kind in DEAD:
                    put(f"dead_fraction/{name}", (out == 0).all(axis=1).mean(axis=1))
                if kind in SATURATED:
                    flat = SATURATED[kind](out).mean(axis=1) >= SATURATED_SHARE
                    put(f"saturated_fraction/{name}", flat.mean(axis=1))
                put(f"distinct_units/{name}", distinct_units(kernel, bias))
            for role, weights in (("kernel", kernel), ("bias", bias)):
                for m, table in enumerate(histograms(weights.reshape(members, -1).astype("float64"))):
                    tables[m][f"{role}/{name}"] = table
        put("gradient_ratio", spread[0] / spread[-1])
    return list(zip(scalars, tables, strict=True))


def layer_kinds(model_spec, head, n_layers):
    """Each weighted layer's activation name: the model's hidden activation, then the head's."""
    from models.builders import MODELS

    return [MODELS.resolve(model_spec).get("activation", "linear")] * (n_layers - 1) + [head.activation]


def keras_probe(model, model_spec, loss, head, x, y):
    """Diagnostics of one Keras model (the reference engine): one (scalars, histograms).

    Pre-activations are recomputed from each Dense or Conv2D layer's own weights; a batch norm or
    activation layer after a weighted layer replaces that layer's output.
    """
    import keras
    from keras import ops

    from models.losses import get as get_loss

    loss = get_loss(loss)
    loss.reduction = None
    weighted = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense | keras.layers.Conv2D)]

    def forward(x):
        pre, outputs = [], []
        for layer in model.layers:
            if layer in weighted:
                z = ops.matmul(x, layer.kernel) if isinstance(layer, keras.layers.Dense) \
                    else layer.convolution_op(x, layer.kernel)
                pre.append(z + layer.bias)
                x = layer.activation(pre[-1])
                outputs.append(x)
            else:
                x = layer(x, training=False)
                if isinstance(layer, keras.layers.BatchNormalization | keras.layers.Activation):
                    outputs[-1] = x
        return pre, outputs, ops.sum(loss(y, x))

    outputs, gradients = signals(lambda x: backprop(forward, x), x)
    return measure([layer.name for layer in weighted], layer_kinds(model_spec, head, len(weighted)),
                   [layer.kernel.numpy()[None] for layer in weighted], [layer.bias.numpy()[None] for layer in weighted],
                   [a[None] for a in outputs], [g[None] for g in gradients])[0]
