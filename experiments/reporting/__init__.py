"""The reporting layer: what a user reads, built only from what runs wrote to disk. One rendering
path for every table and page (`render`: Markdown, HTML, console), the tidy tables (`tables`),
the experiment report (`report`, `plots`) and the tuner report (`tune_report`).

May import: `experiments.records`, `experiments.spec` and below; never an engine.
"""
