"""What per-layer diagnostics a run records, as the spec and the reports name them.

For every weighted layer (`hidden_<i>` and `output`, as the model builders name them), on the
first `probe` training examples (the same examples for every run of an experiment):

- activation_mean, activation_std: of the layer's outputs, after its activation;
- gradient_std: of the back-propagated gradient, d(sum of per-example losses) / d(the layer's
  pre-activations); `gradient_ratio` is that std at the first layer over the output layer's:
  far below 1 is a vanishing gradient, far above 1 an exploding one;
- dead_fraction (relu, leaky_relu layers): units whose output is 0 on every probe example;
- saturated_fraction (sigmoid, tanh layers): units whose output stays near an asymptote, within
  10% of the activation's range of it (sigmoid below 0.1 or above 0.9, |tanh| above 0.8, where the
  derivative is at most 36% of its peak), on at least 90% of the probe examples: the sense of
  Glorot & Bengio (2010), whose top sigmoid layer sits near 0 (https://proceedings.mlr.press/v9/glorot10a.html);
- distinct_units (hidden layers): the number of different units, counting units whose incoming
  weights and bias are equal within 1e-5 of the layer's largest weight as one: zeros or ones
  initialization leaves 1.

The engines measure them (`experiments.engines.diagnostics`); claims and reports read them by these names.
"""

import numpy as np

DEAD = ("relu", "leaky_relu")


SATURATION_BAND = 0.1  # the share of the activation's range next to each asymptote


SATURATED = {"tanh": lambda a: np.abs(a) > 1 - 2 * SATURATION_BAND,
             "sigmoid": lambda a: (a < SATURATION_BAND) | (a > 1 - SATURATION_BAND)}


SATURATED_SHARE = 0.9


SATURATION_TEXT = (f"output within {SATURATION_BAND:.0%} of the activation's range of an asymptote, i.e. sigmoid "
                   f"below {SATURATION_BAND:g} or above {1 - SATURATION_BAND:g}, |tanh| above "
                   f"{1 - 2 * SATURATION_BAND:g}, on at least {SATURATED_SHARE:.0%} of the probe examples")


SYMMETRY_RTOL = 1e-5


SUMMARY = ("distinct_units", "gradient_ratio", "dead_fraction", "saturated_fraction")


def summary(scalars):
    """A run's headline figures from one step's scalars: the fewest distinct units of any hidden
    layer, the gradient ratio, and the mean dead and saturated fractions over hidden layers."""
    out = {}
    for quantity in SUMMARY:
        values = [v for k, v in scalars.items() if k == quantity or k.startswith(quantity + "/")]
        if values:
            out[quantity] = min(values) if quantity == "distinct_units" else float(np.mean(values))
    return out
