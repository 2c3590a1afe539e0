"""Command line: `init-loss-lab run|tune|validate|report|claims|compare|launch|tensorboard|list` (also
`python -m experiments ...` from the repository): `main` parses the arguments (`parser`), runs one
command (`commands`) and turns bad input into one `error:` line and exit code 2; a stop signal
(`signals`) ends it like Ctrl-C, resumable.

Kept thin: each command is a plain function call (`spec.validate`, `runner.run_experiment`,
`runner.report_experiment`, `tuning.tune`, `claims.run.run_claims`). Nothing heavy is imported
before a command needs it, so `--help` is fast and imports no TensorFlow.
"""

import gc
import os
import signal
import sys
import threading

from experiments.cli import commands
from experiments.cli.parser import build_parser
from experiments.cli.signals import Terminated, quiet_about_dropped_stops, stop, stopped

EXIT_USAGE = 2


def entry():
    """The installed command and `python -m experiments`: TensorFlow's native start-up chatter
    filtered out of stderr (`console`), then `main`."""
    from experiments.console import filter_native_logs

    filter_native_logs()
    # Python's collector, at its default of a young collection every 700 allocations, took 1.3 s
    # of the shipped `make tune` (25 s), 1.0 s of it in 8 full collections over everything
    # TensorFlow and Keras hold; 0.45 s with this setting, which ran no full one. The command's
    # own process only: the Python API leaves a user's session as it is
    gc.set_threshold(10_000, 10, 10)
    code = main()
    # What is left is freed with the process. The interpreter's last collection, over everything
    # TensorFlow and Keras hold, took 1.1-1.7 s of every command's exit; frozen objects are not
    # collected (files and records were closed by the command; exit handlers still run)
    gc.freeze()
    return code


def main(argv=None):
    """Run one command; returns the exit code (2 for bad input, with one line per problem)."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    command = getattr(commands, f"cmd_{args.command}")
    # `kill` and Ctrl-C stop the same way: one line, resumable (only the main thread handles signals)
    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)
    previous = {s: signal.signal(s, stop) for s in handled} \
        if threading.current_thread() is threading.main_thread() else {}
    unraisable, sys.unraisablehook = sys.unraisablehook, quiet_about_dropped_stops
    try:
        return command(args)
    except ValueError as e:  # SpecError and every one-line input error
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader stopped reading (`init-loss-lab list | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a full disk, an unwritable folder: nothing half-written is kept
        print(f"error: {e.strerror or e}" + (f": {e.filename!r}" if e.filename else ""), file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        stopped()
        signal_name = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"{signal_name}; run the same command again to resume", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    finally:
        stopped()
        sys.unraisablehook = unraisable
        for number, handler in previous.items():
            signal.signal(number, handler)
