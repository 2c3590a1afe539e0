"""Model builders, and the losses and output heads that go with a task.

Importing this package does not import TensorFlow; building a model does.
"""

from models.activations import ACTIVATIONS
from models.builders import MODELS, build, build_cnn, build_linear, build_mlp
from models.losses import LOSSES, Head, check_loss, head_for

__all__ = [
    "ACTIVATIONS", "LOSSES", "MODELS", "Head", "build", "build_cnn", "build_linear", "build_mlp",
    "check_loss", "head_for",
]
