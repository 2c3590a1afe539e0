"""Running comparisons, in layers that import only downward (`make lint` checks it):

    cli -> tuning, claims -> runner -> engines, reporting -> records -> spec -> data
        (-> models -> initializers, the top-level catalogue packages)

`python -m experiments` is the command line. Importing this package imports no TensorFlow.
"""
