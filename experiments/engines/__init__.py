"""The engines layer: how runs train. Every engine trains the same procedure (`procedure`: batch
order, divergence rule, early stopping with best-weight restore) and reports through a
`records.rundir.RunRecorder`; `ENGINES` is the registry the runner picks from by the spec's name.

An engine module has `group_key(run, data)` (runs with equal keys train together) and
`train_runs(jobs, data)` (train `(run, recorder)` jobs). May import: `experiments.records`,
`experiments.spec`, `experiments.data`, `models`, `initializers`.
"""

from experiments.engines import keras_fit, vectorized

ENGINES = {"vectorized": vectorized, "keras": keras_fit}
