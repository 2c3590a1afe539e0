"""How to stack convolutions: forward and backward time of M members' convolutions computed as
one, under XLA on this machine's CPU (`models.stacked.StackedConv2D` computes it as `shifted`).

    python -m experiments.benchmarks.stacked_conv [--members 54] [--batch 32] [--repeats 5]

The shipped CNN's first two layers on digits-sized images (8x8, same padding, 3x3 kernels, 1 -> 8
-> 16 channels with a 2x2 max-pool between) for M members, five ways, each a `tf.function` with
`jit_compile=True` taking 20 steps of gradient descent on the kernels (a loss on the outputs):

    grouped   members folded into the channel axis, one convolution with M groups
    patches   im2col (`tf.image.extract_patches`) and one batched matmul per layer
    shifted   the image shifted to each kernel offset, side by side, and one batched matmul per layer
    loop      a Python loop of M ordinary convolutions (traced into one XLA graph)
    one       a single member's ordinary convolution, times M (what M separate runs cost)

Each is checked against a loop of TensorFlow's own convolutions outside XLA (outputs and
gradients at the initial kernels), compiled once, then timed over `--repeats` calls of 20 steps;
medians are printed, with the ratio to `one`.
"""

import argparse
import statistics
import time

import numpy as np


def _layers(tf, members, kernel_size=3, channels=(1, 8, 16)):
    rng = np.random.default_rng(0)
    return [tf.Variable(rng.normal(0, 0.3, (members, kernel_size, kernel_size, c_in, c_out)).astype("float32"))
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)]


def _pool(tf, x):
    return tf.nn.max_pool2d(x, 2, 2, "SAME")


def grouped(tf, x, kernels):
    """x (M, B, H, W, C) -> channels folded: (B, H, W, M*C); kernel (k, k, C, M*F): M groups."""
    m, b, h, w, c = x.shape
    y = tf.reshape(tf.transpose(x, (1, 2, 3, 0, 4)), (b, h, w, m * c))
    for i, kernel in enumerate(kernels):
        k, _, c_in, c_out = kernel.shape[1:]
        folded = tf.reshape(tf.transpose(kernel, (1, 2, 3, 0, 4)), (k, k, c_in, m * c_out))
        y = tf.nn.relu(tf.nn.conv2d(y, folded, 1, "SAME"))
        if i < len(kernels) - 1:
            y = _pool(tf, y)
    return y


def patches(tf, x, kernels):
    """im2col per member, then (M, B*H*W, k*k*C) @ (M, k*k*C, F)."""
    m, b = x.shape[:2]
    y = x
    for i, kernel in enumerate(kernels):
        k, _, c_in, c_out = kernel.shape[1:]
        h, w = y.shape[2:4]
        cols = tf.image.extract_patches(tf.reshape(y, (m * b, h, w, c_in)), [1, k, k, 1], [1, 1, 1, 1],
                                        [1, 1, 1, 1], "SAME")
        cols = tf.reshape(cols, (m, b * h * w, k * k * c_in))
        y = tf.nn.relu(tf.reshape(tf.matmul(cols, tf.reshape(kernel, (m, k * k * c_in, c_out))), (m, b, h, w, c_out)))
        if i < len(kernels) - 1:
            y = _member_pool(tf, y)
    return y


def shifted(tf, x, kernels):
    """im2col from slices: the image shifted to each of the k*k kernel offsets, side by side, and
    one batched matmul per layer (`models.stacked.im2col_conv`; until 2026-11-25 it summed k*k
    batched matmuls, one per offset)."""
    from models.stacked import im2col_conv

    y = x
    for i, kernel in enumerate(kernels):
        y = tf.nn.relu(tf.reshape(im2col_conv(y, kernel), (*y.shape[:-1], kernel.shape[-1])))
        if i < len(kernels) - 1:
            y = _member_pool(tf, y)
    return y


def _member_pool(tf, y):
    """Each member's 2x2 max-pool of (M, B, H, W, C)."""
    m, b, h, w, c = y.shape
    return tf.reshape(_pool(tf, tf.reshape(y, (m * b, h, w, c))), (m, b, (h + 1) // 2, (w + 1) // 2, c))


def loop(tf, x, kernels):
    outs = []
    for member in range(x.shape[0]):
        y = x[member]
        for i, kernel in enumerate(kernels):
            y = tf.nn.relu(tf.nn.conv2d(y, kernel[member], 1, "SAME"))
            if i < len(kernels) - 1:
                y = _pool(tf, y)
        outs.append(y)
    return tf.stack(outs)


def _step(tf, way, kernels, rate, jit=True):
    """20 steps of gradient descent at `rate` (a variable) on the kernels (each step's work
    differs, so XLA cannot merge the steps into one)."""
    start = [tf.identity(k) for k in kernels]

    @tf.function(jit_compile=jit)
    def steps(x):
        for kernel, first in zip(kernels, start, strict=True):
            kernel.assign(first)
        total = tf.constant(0.0)
        for _ in range(20):
            with tf.GradientTape() as tape:
                out = way(tf, x, kernels)
                loss = tf.reduce_mean(out * out)
            grads = tape.gradient(loss, kernels)
            for kernel, grad in zip(kernels, grads, strict=True):
                kernel.assign_sub(rate * grad)
            total += loss
        return total, out, grads
    return steps


def _median_seconds(steps, x, repeats):
    """The median wall time of `repeats` calls."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        steps(x)[0].numpy()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def _as_members(out, members):
    """Any way's output as (M, B, H, W, F)."""
    if out.shape[0] == members:
        return out.numpy()
    b, h, w, mf = out.shape
    return out.numpy().reshape(b, h, w, members, mf // members).transpose(3, 0, 1, 2, 4)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.stacked_conv",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=54)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import tensorflow as tf

    m = args.members
    x = tf.constant(np.random.default_rng(1).normal(size=(m, args.batch, 8, 8, 1)).astype("float32"))
    kernels = _layers(tf, m)
    ways = {"grouped": grouped, "patches": patches, "shifted": shifted, "loop": loop}
    timed, outputs = {}, {}
    rate = tf.Variable(0.0)
    _, out, grads = _step(tf, loop, kernels, rate, jit=False)(x)  # the reference: TensorFlow's own kernels
    reference = (_as_members(out, m), [g.numpy() for g in grads])
    initial = [k.numpy() for k in kernels]
    for name, way in ways.items():
        for kernel, value in zip(kernels, initial, strict=True):  # every way starts from the same kernels
            kernel.assign(value)
        steps = _step(tf, way, kernels, rate)
        rate.assign(0.0)  # the same kernels at every step: the ways' outputs and gradients compared
        started = time.perf_counter()
        _, out, grads = steps(x)  # traces and compiles
        compile_s = time.perf_counter() - started
        outputs[name] = (_as_members(out, m), [g.numpy() for g in grads])
        rate.assign(1e-3)
        timed[name] = (_median_seconds(steps, x, args.repeats), compile_s)
    one = _step(tf, loop, _layers(tf, 1), rate)
    one(x[:1])
    timed["one x M"] = (_median_seconds(one, x[:1], args.repeats) * m, None)
    print(f"{m} members, batch {args.batch}, 8x8x1 -> conv 3x3 x8 -> pool -> conv 3x3 x16; 20 forward+backward "
          f"steps per call, median of {args.repeats}")
    for name, (seconds, compile_s) in timed.items():
        agree = ""
        if name in outputs:
            out, grads = outputs[name]
            ref_out, ref_grads = reference
            errors = [float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) or 1))
                      for a, b in zip([out, *grads], [ref_out, *ref_grads], strict=True)]
            agree = (f"; max relative difference to TensorFlow's own convolutions: outputs {errors[0]:.1e}, "
                     f"gradients {max(errors[1:]):.1e}")
        compiled = f", compile {compile_s:.1f} s" if compile_s is not None else ""
        print(f"  {name:<8} {seconds * 1000:8.1f} ms ({timed['one x M'][0] / seconds:5.1f}x one x M){compiled}{agree}")


if __name__ == "__main__":
    main()
