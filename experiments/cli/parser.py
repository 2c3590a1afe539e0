"""The command line's arguments: one `argparse` parser with a subcommand per command."""

import argparse

from experiments.launch import EXECUTORS


def build_parser():
    parser = argparse.ArgumentParser(
        prog="init-loss-lab",
        description="Compare weight initializers and losses (and optimizers, learning rates, batch sizes) "
                    "on Keras models, over seeds.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(name, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("config", help="experiment config: a TOML file, or a shipped config by name, e.g. "
                                        "digits_init_x_loss (init-loss-lab list configs)")
        sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                         help="override a config field; the value is read as TOML, else as a Python literal: "
                              "epochs=1, \"seeds=[0, 1]\", dataset.noise=0.3, 'optimizer={ name = \"sgd\" }' "
                              "(repeatable)")
        return sub

    run = with_config("run", "run an experiment grid (finished runs are skipped), then write its report")
    run.add_argument("--output", default=".", metavar="DIR", help="output tree: DIR/runs and DIR/reports (default .)")
    run.add_argument("--overwrite", action="store_true", help="rerun finished runs too")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--shard", metavar="I/N", help="train only the I-th of N shares of the grid (I from 0); "
                                                    "auto/N reads I from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX")
    tune = with_config("tune", "search learning rate and batch size with keras-tuner (resumes a stopped search), "
                               "then retrain every cell at its best settings and write the tuner report")
    tune.add_argument("--output", default=".", metavar="DIR", help="output tree: DIR/runs and DIR/reports (default .)")
    tune.add_argument("--overwrite", action="store_true", help="start the search (and the tuned runs) afresh")
    tune.add_argument("--workers", type=int, default=0, metavar="N",
                      help="run keras-tuner's distributed mode here: a chief oracle and N worker processes on "
                           "127.0.0.1 (default 0: one process)")
    tune.add_argument("--quiet", action="store_true", help="no progress bar")
    with_config("validate", "check a config and print its grid, without training")
    launch = commands.add_parser(
        "launch", help="run a grid's (or the claims') shards as a job array: on SLURM through submitit, on this "
                       "machine (submitit's local executor), or write a Kubernetes Indexed Job manifest",
        description="run a grid's (or the claims') shards as a job array: on SLURM through submitit, on this "
                    "machine (submitit's local executor), or write a Kubernetes Indexed Job manifest")
    launch.add_argument("configs", nargs="*", metavar="CONFIG",
                        help="the experiment config; with --claims, claim configs (default: every shipped claim)")
    launch.add_argument("--claims", action="store_true",
                        help="launch the textbook claims: every claim's grid in N shards, then the claims report")
    launch.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="override a config field (repeatable), as for run")
    launch.add_argument("--jobs", type=int, required=True, metavar="N", help="shards, one array task each")
    launch.add_argument("--executor", choices=EXECUTORS, default="slurm",
                        help="slurm (submit and return), local (run here and wait) or k8s (write a manifest)")
    launch.add_argument("--output", default=".", metavar="DIR",
                        help="output tree every task shares: DIR/runs, DIR/reports, submitit's logs in DIR/launch")
    launch.add_argument("--parallel", type=int, metavar="K", help="at most K tasks at once (default: all)")
    launch.add_argument("--partition", help="SLURM partition")
    launch.add_argument("--time", type=int, default=60, metavar="MINUTES", help="time limit per task (default 60)")
    launch.add_argument("--cpus", type=int, default=2, help="CPUs per task (default 2)")
    launch.add_argument("--mem", type=float, metavar="GB", help="memory per task")
    launch.add_argument("--image", help="k8s: the container image with init-loss-lab installed")
    launch.add_argument("--volume-claim", help="k8s: the persistent volume claim holding the config and the output")
    launch.add_argument("--mount", default="/shared", help="k8s: where the volume is mounted (default /shared)")
    launch.add_argument("--quiet", action="store_true", help="accepted for symmetry with run; tasks always run quiet")
    report = commands.add_parser("report", help="rebuild reports from what runs wrote to disk",
                                 description="rebuild reports from what runs wrote to disk")
    report.add_argument("names", nargs="*", metavar="EXPERIMENT", help="experiment names (default: all under DIR/runs)")
    report.add_argument("--output", default=".", metavar="DIR", help="output tree holding runs/ (default .)")
    claims = commands.add_parser("claims", help="run the textbook-claim experiments and write the claims report",
                                 description="run the textbook-claim experiments (finished runs are skipped) and "
                                             "write reports/claims/claims.md with a verdict per claim")
    claims.add_argument("configs", nargs="*", metavar="CONFIG",
                        help="claim configs (default: every experiments/configs/claims/*.toml)")
    claims.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="override a field of every claim config, e.g. engine=keras (repeatable)")
    claims.add_argument("--output", default=".", metavar="DIR", help="output tree: DIR/runs and DIR/reports")
    claims.add_argument("--overwrite", action="store_true", help="rerun finished runs too")
    claims.add_argument("--quiet", action="store_true", help="no progress bars")
    claims.add_argument("--shard", metavar="I/N", help="train only the I-th of N shares of every claim's grid; the "
                                                       "shard that finishes them writes the claims report (as run)")
    board = commands.add_parser("tensorboard", help="serve one experiment in TensorBoard on 127.0.0.1",
                                description="serve one experiment's folder, runs/EXPERIMENT, in TensorBoard on "
                                            "127.0.0.1")
    board.add_argument("experiment", metavar="EXPERIMENT", help="an experiment name under DIR/runs")
    board.add_argument("--output", default=".", metavar="DIR", help="output tree holding runs/ (default .)")
    board.add_argument("--port", type=int, default=6006, help="port on 127.0.0.1 (default 6006)")
    compare = commands.add_parser(
        "compare", help="compare two cells paired by seed: difference, interval, p-value, verdict",
        description="compare two cells of an experiment (or of two experiments trained on the same data and "
                    "seeds), paired by seed: the mean difference a - b, its 95%% interval, the paired t-test's "
                    "p-value, a verdict and the seeds needed to separate them")
    compare.add_argument("experiment", metavar="EXPERIMENT", help="an experiment name under DIR/runs")
    compare.add_argument("--a", required=True, metavar="AXIS=VALUE,...",
                         help="cell a, e.g. initializer=he_normal,loss=huber (several cells: pooled per seed)")
    compare.add_argument("--b", required=True, metavar="AXIS=VALUE,...", help="cell b, likewise")
    compare.add_argument("--b-experiment", metavar="EXPERIMENT", help="take cell b from another experiment")
    compare.add_argument("--metric", help="a recorded metric (default: the headline), on the test set: accuracy, "
                                          "loss, ...; or a column of runs.csv such as best_val_accuracy")
    compare.add_argument("--output", default=".", metavar="DIR", help="output tree holding runs/ (default .)")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    catalogue = commands.add_parser("list", help="list the catalogues: initializers, losses, ...",
                                    description="list the catalogues and their parameters")
    catalogue.add_argument("which", nargs="?", help="one catalogue (default: all)")
    return parser
