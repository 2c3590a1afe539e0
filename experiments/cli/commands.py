"""The commands: `cmd_<name>(args)` for each subcommand, each a plain call into the layers below;
returns the exit code, raises ValueError for bad input (one line per problem)."""

import os
import sys
from pathlib import Path

from experiments.cli.signals import stopped
from experiments.records import store


def _load(config, assignments):
    from experiments.spec import apply_overrides, load_config, locate_config, validate

    return validate(apply_overrides(load_config(config), assignments), base=locate_config(config).parent)


def cmd_run(args):
    from experiments.runner import report_experiment, run_experiment

    shard = parse_shard(args.shard, os.environ)
    spec, datasets = _load(args.config, args.assignments)
    exp_dir, trained, skipped = run_experiment(spec, datasets, args.output, args.overwrite, progress=not args.quiet,
                                               shard=shard)
    of = f" of shard {shard[0]}/{shard[1]}" if shard else ""
    print(f"{spec.name}: trained {trained} runs{of}, skipped {skipped} already finished")
    tables = None
    if shard is not None:
        from experiments.reporting.tables import load_tables

        tables = load_tables(exp_dir)  # read once: for the count, then for the report
        missing = int((tables[0]["status"] == "unfinished").sum())
        if missing:  # the shard that finishes the grid writes the report
            print(f"  {missing} runs of the grid are not finished yet (other shards); the last shard to finish "
                  f"writes the report, or: init-loss-lab report {spec.name} --output {args.output}")
            return 0
    report = report_experiment(exp_dir, args.output, spec.name, tables)
    print(f"  report:      {report} (and report.html)")
    print(f"  tensorboard: {store.tensorboard_command(spec.name, args.output)}")
    return 0


def parse_shard(text, environ):
    """`I/N` (or `auto/N`, I from a job array's task index) -> (I, N), 0 <= I < N; None -> None."""
    if text is None:
        return None
    index, _, count = text.partition("/")
    if index == "auto":
        found = [environ[v] for v in ("SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX") if environ.get(v)]
        if not found:
            raise ValueError(f"--shard {text}: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set; give "
                             "the index, e.g. --shard 0/4")
        index = found[0]
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise ValueError(f"--shard {text!r} must be I/N with 0 <= I < N (e.g. 0/4), or auto/N")
    return int(index), int(count)


def cmd_launch(args):
    from experiments import launch
    from experiments.spec import locate_config

    if args.jobs < 1 or (args.parallel is not None and args.parallel < 1):
        raise ValueError(f"--jobs and --parallel must be at least 1, got {args.jobs} and {args.parallel}")
    if args.executor == "k8s" and not (args.image and args.volume_claim):
        raise ValueError("--executor k8s needs --image (with init-loss-lab installed) and --volume-claim (the "
                         "shared volume holding the config and the output)")
    # a bad config fails here, before anything is submitted
    if args.claims:
        from experiments.claims.run import load_claims

        load_claims(claim_paths(args.configs), args.assignments)
        name = "claims"
    elif len(args.configs) != 1:
        raise ValueError(f"launch takes one experiment config, got {len(args.configs)}; or --claims [CONFIG ...]")
    else:
        name = _load(args.configs[0], args.assignments)[0].name
    if args.executor == "k8s":  # paths as given: they are paths inside the shared volume
        shard, _ = launch.commands(name, args.configs, args.assignments, args.output, args.claims)
        job = launch.manifest(name, shard, args.jobs, args.image, args.volume_claim, args.mount, args.parallel,
                              args.cpus, args.mem)
        path = launch.write_manifest(job, Path(args.output) / "launch" / f"{name}.k8s.json")
        print(f"{name}: wrote the Kubernetes Indexed Job of {args.jobs} shards to {path}")
        print(f"  submit: kubectl apply -f {path}   follow: kubectl get job {job['metadata']['name']} -w")
        return 0
    output = str(Path(args.output).resolve())
    shard, report = launch.commands(name, [str(locate_config(c).resolve()) for c in args.configs], args.assignments,
                                    output, args.claims)
    shards, report, printed = launch.submit(name, shard, report, output, args.jobs, args.executor, args.parallel,
                                            args.partition, args.time, args.cpus, args.mem)
    print(f"{name}: {args.executor} job array {', '.join(shards)}; report job {report}")
    for job, text in zip([*shards, report], printed, strict=False):  # local tasks: what each said
        print(f"  task {job}:\n" + "".join(f"    {line}\n" for line in text.strip().splitlines()), end="")
    if args.executor == "slurm":
        print(f"  follow: squeue -j {shards[0].split('_')[0]},{report}   logs: {Path(output) / 'launch' / name}")
    else:
        print(f"  report: {store.report_dir(args.output, name) / ('claims.md' if args.claims else 'report.md')}")
    return 0


def cmd_tune(args):
    spec, datasets = _load(args.config, args.assignments)
    if spec.tune is None:
        raise ValueError(f"config {args.config!r} has no [tune] table; see experiments/configs/digits_tune.toml")
    if args.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    from experiments import tuning
    from experiments.runner import report_experiment

    if args.workers:
        if tuning.role() != "standalone":
            raise ValueError("--workers starts its own chief and workers; unset the KERASTUNER_* variables")
        command = ["tune", args.config, *(f"--set={a}" for a in args.assignments), f"--output={args.output}"]
        return tuning.launch(command + ["--overwrite"] * args.overwrite, spec, args.workers, args.output,
                             progress=not args.quiet)
    search_dir, tuned_dir, report = tuning.tune(spec, datasets, args.output, args.overwrite, not args.quiet)
    if report is None:
        print(f"{spec.name}: worker {os.environ.get('KERASTUNER_TUNER_ID')} finished its trials")
        return 0
    if tuned_dir is not None:
        report_experiment(tuned_dir, args.output, tuned_dir.name)
    import pandas as pd

    from experiments.reporting.render import console_table
    from experiments.reporting.tune_report import DIGITS

    tuned = pd.read_csv(report.parent / "tuned.csv") if tuned_dir is not None else None
    print(f"{spec.name}: the tuned comparison (test set, mean +- std (n seeds), each cell at its best settings)")
    print(console_table(tuned, DIGITS) + "\n" if tuned is not None else "  no cell has a completed trial")
    print(f"  tuner report: {report} (and tune.html, trials.csv, tuned.csv)")
    print(f"  tensorboard:  {store.tensorboard_command(spec.name, args.output)}")
    return 0


def cmd_validate(args):
    from experiments.spec import expand

    spec, datasets = _load(args.config, args.assignments)
    runs = expand(spec)
    cells = dict.fromkeys(r.cell for r in runs)
    data = ", ".join(f"{d.name} ({len(d.x_train)} training examples)" for d in datasets)
    print(f"{spec.name}: valid; {len(runs)} runs = {len(cells)} cells x {len(spec.seeds)} seeds "
          f"on {data}, a {datasets[0].task} task")
    for cell in cells:
        print(f"  {cell}")
    return 0


def cmd_report(args):
    from experiments.reporting.tune_report import SEARCH, build_tune_report
    from experiments.runner import report_experiment

    root = Path(args.output) / "runs"
    found = sorted(p.parent.name for p in [*root.glob("*/experiment.json"), *root.glob(f"*/{SEARCH}")])
    for name in args.names:
        store.check_name(name, "experiment")
        if name not in found:
            raise ValueError(f"no experiment {name!r} under {str(root)!r}; "
                             f"valid: {', '.join(found) or 'none (run one first: make run)'}")
    if not found:
        raise ValueError(f"no experiments under {str(root)!r}; run one first (make run)")
    for name in args.names or found:
        exp_dir = store.experiment_dir(args.output, name)
        if (exp_dir / SEARCH).is_file():  # a keras-tuner search: its tuned runs are `<name>_tuned`
            tuned = root / f"{name}_tuned"
            with store.locked(exp_dir):
                print(build_tune_report(exp_dir, tuned if tuned.is_dir() else None,
                                        store.report_dir(args.output, name)))
        else:
            print(report_experiment(exp_dir, args.output, name))
    return 0


def cmd_tensorboard(args):
    """TensorBoard on 127.0.0.1 over one experiment's folder (checked to lie inside the output folder)."""
    root = Path(args.output) / "runs"
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if root.is_dir() else []
    store.check_name(args.experiment, "experiment")
    if args.experiment not in found:
        raise ValueError(f"no experiment {args.experiment!r} under {str(root)!r}; run it first, or pick one of: "
                         f"{', '.join(found) or 'none'}")
    if not 0 <= args.port < 65536:
        raise ValueError(f"--port must be a port number (0 to 65535), got {args.port}")
    logdir = store.experiment_dir(args.output, args.experiment).resolve()
    tensorboard = Path(sys.executable).parent / "tensorboard"
    command = [str(tensorboard) if tensorboard.exists() else "tensorboard", "--logdir", str(logdir),
               "--host", "127.0.0.1", "--port", str(args.port)]
    from experiments.records.events import bands_url, tensorboard_url
    from experiments.records.experiment import load_experiment

    url = tensorboard_url(args.port, load_experiment(logdir)["spec"].headline)
    print(f"{args.experiment}: serving {logdir}; open {url} (Ctrl-C stops it)\n"
          f"  mean +- std bands per cell: {bands_url(args.port)}", flush=True)
    import subprocess

    server = subprocess.Popen(command)
    try:
        return server.wait()
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped, not an interruption to resume
        stopped()
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()


def cmd_compare(args):
    import json
    import math

    from experiments.reporting.render import console_text
    from experiments.reporting.verdicts import compare_named, parse_selector

    found = compare_named(args.output, args.experiment, parse_selector(args.a), parse_selector(args.b), args.metric,
                          args.b_experiment)
    column = found["metric"]
    if args.json:
        clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v  # noqa: E731
        found["comparison"] = {k: clean(v) for k, v in found["comparison"].items()}
        for side in ("a", "b"):
            found[side]["values"] = {str(seed): v for seed, v in found[side]["values"].items()}
        print(json.dumps(found, indent=2, default=str))
        return 0
    c = found["comparison"]
    print(console_text(f"{column}, paired by seed ({c['n']} seeds both finished)"))
    for side in ("a", "b"):
        part = found[side]
        values = list(part["values"].values())
        shown = ", ".join(f"{k}={v}" for k, v in part["selector"].items())
        pooled = f"; {len(part['cells'])} cells pooled per seed" if len(part["cells"]) > 1 else ""
        mean = f"{sum(values) / len(values):.4g} over {len(values)} seeds" if values else "no seed finished"
        print(console_text(f"  {side}: {part['experiment']}: {shown} = {mean}{pooled}"))
    if c["n"] >= 2:
        print(f"  a - b: {c['diff']:.4g}, 95% t-interval [{c['lower']:.4g}, {c['upper']:.4g}], "
              f"p = {c['p']:.3g} (paired t-test, one comparison: not Holm-corrected as the report's tables are)"
              + (f"; paired bootstrap [{c['boot_lower']:.4g}, {c['boot_upper']:.4g}]"
                 if math.isfinite(c["boot_lower"]) else ""))
    verdict = {"better": "a is better than b", "worse": "a is worse than b",
               "practically equivalent": "a and b are practically equivalent",
               "inconclusive": "inconclusive: neither better nor practically equivalent",
               "no verdict": f"no verdict: {c['n']} seeds, a paired comparison needs at least 3"}[c["verdict"]]
    print(f"  verdict: {verdict} (margin of practical equivalence {c['margin']:.4g}: {found['margin_source']})")
    if c["verdict"] in ("inconclusive", "no verdict") and math.isfinite(c["seeds_needed"]):
        print(f"  seeds needed to separate them at this difference and spread: {c['seeds_needed']:.0f} "
              "(80% power, level 0.05)")
    return 0


def claim_paths(configs):
    """The claim configs given, or every shipped one."""
    return [Path(p) for p in configs] or sorted((Path(__file__).parents[1] / "configs" / "claims").glob("*.toml"))


def cmd_claims(args):
    from experiments.claims.run import run_claims

    shard = parse_shard(args.shard, os.environ)
    report = run_claims(claim_paths(args.configs), args.assignments, args.output, args.overwrite,
                        progress=not args.quiet, shard=shard)
    if report is not None:
        print(report)
    return 0


def cmd_list(args):
    from experiments.data import DATASETS
    from experiments.spec import load_config
    from experiments.spec.config import shipped_configs
    from initializers import INITIALIZERS
    from models import ACTIVATIONS, LOSSES, MODELS
    from models.metrics import METRICS
    from models.optimizers import OPTIMIZERS

    catalogues = {r.kind: r for r in (INITIALIZERS, LOSSES, ACTIVATIONS, OPTIMIZERS, MODELS, DATASETS)}
    plural = {k + ("es" if k.endswith("s") else "s"): k for k in catalogues}
    which = plural.get(args.which, args.which)
    if which is not None and which not in catalogues and which not in ("configs", "metrics"):
        raise ValueError(f"unknown catalogue {args.which!r}; valid: {', '.join(plural)}, metrics, configs")
    if which in (None, "configs"):
        print("configs (init-loss-lab run NAME):")
        for name, path in shipped_configs().items():
            purpose = " ".join(load_config(path)["description"].strip().split("\n\n")[0].split())
            print(f"  {name}  - {purpose if len(purpose) <= 100 else purpose[:97] + '...'}")
    for kind, registry in catalogues.items():
        if which in (None, kind):
            print(f"{next(p for p, k in plural.items() if k == kind)}:")
            for name, entry in registry.entries.items():
                params = ", ".join(f"{k}={v!r}" for k, v in entry.params.items())
                print(f"  {name}" + (f"({params})" if params else "") + (f"  - {entry.note}" if entry.note else ""))
    if which in (None, "metrics"):
        print("metrics (the first one a config lists is its headline):")
        for name, metric in METRICS.items():
            better = "higher" if metric.greater_is_better else "lower"
            print(f"  {name}  - {', '.join(metric.tasks)}; {better} is better")
    return 0
