"""The data layer: datasets by name (embedded, generated, or a local file) and their preparation
(split, noise or outliers, standardization).

May import: `initializers.registry` (the catalogue type); never TensorFlow.
"""

from experiments.data.datasets import DATASETS, Dataset, load_dataset

__all__ = ["DATASETS", "Dataset", "load_dataset"]
