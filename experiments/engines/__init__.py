"""The engines layer: how runs train. Every engine trains the same procedure (`procedure`: batch
order, divergence rule, early stopping with best-weight restore) and reports through a
`records.rundir.RunRecorder`; `ENGINES` is the registry the runner picks from by the spec's name.

An engine module has `group_key(run, data)` (runs with equal keys train together) and
`train_runs(jobs, data, group_size)` (train `(run, recorder)` jobs; of a group split into stacks
or shards, `group_size` is the whole group's, so that each part trains as the whole would). May
import: `experiments.records`, `experiments.spec`, `experiments.data`, `models`, `initializers`.
"""

from experiments.engines import keras_fit, vectorized

ENGINES = {"vectorized": vectorized, "keras": keras_fit}
