"""The records layer: everything the suite keeps on disk and how it is written. The output folder
and its safety rules (`store`: paths checked to stay inside it, atomic writes, locks), a run's
folder (`rundir`), an experiment's record (`experiment`), TensorBoard event files (`events`) and
the environment (`environment`).

May import: `experiments.spec` and below. A run's record is handed its log sink (TensorBoard) by
the runner rather than importing it.
"""
