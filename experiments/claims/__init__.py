"""The claims layer: textbook claims decided on the runs of their experiments (`evaluate`), the
claims report (`report`) and the `claims` command's procedure (`run`).

May import: `experiments.runner`, `experiments.reporting`, `experiments.records`, `experiments.spec`
and below.
"""
