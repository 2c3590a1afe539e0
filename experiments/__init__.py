"""Running comparisons: the experiment spec and its validation, datasets, the runner and its
engines, TensorBoard logging, results tables and reports, and the CLI (`python -m experiments`).

Importing this package imports no TensorFlow.
"""
