"""What the suite prints, and only that: TensorFlow's native start-up chatter is filtered out of
the process's stderr.

TensorFlow 2.21 logs through absl before absl's logging is set up, so `TF_CPP_MIN_LOG_LEVEL`
(like `GLOG_minloglevel` and `ABSL_MIN_LOG_LEVEL`) no longer silences it: every process prints
"All log messages before absl::InitializeLog() ...", the oneDNN notice and the CPU-feature notice,
twice. `filter_native_logs` routes file descriptor 2 through a pipe whose reader drops absl's INFO
lines (`I<mmdd> <time> <thread> <file>.cc:<line>] ...`), that preamble, the CPU-feature
continuation line and, on a machine without an NVIDIA GPU, the GPU-capable build's error that
`cuInit` failed (experiment.json's environment lists the devices used), and passes everything else
on unchanged: other warnings and errors (`W`, `E`, `F` lines), Python's own output, tracebacks,
progress bars, and what child processes print.
"""

import atexit
import os
import re
import sys
import threading

CHATTER = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "
    rb"|E\d{4} [\d:.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit: "
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.")
_STATE = {}


def is_chatter(line):
    """Whether a line of stderr (bytes) is TensorFlow's native start-up chatter."""
    return CHATTER.match(line) is not None


def filter_native_logs():
    """Filter this process's stderr (fd 2, also for its child processes) from now on; call it from
    a program's entry point before TensorFlow is imported. Idempotent."""
    if _STATE:
        return
    sys.stderr.flush()
    real = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    thread = threading.Thread(target=_forward, args=(read, real), name="stderr filter", daemon=True)
    thread.start()
    _STATE.update(real=real, thread=thread)
    atexit.register(_restore)


def _forward(read, real):
    with os.fdopen(read, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not is_chatter(line))
            if pending and b"\r" in pending:  # a progress bar redraws without a newline: pass it on now
                kept, pending = kept + pending, b""
            if kept:
                os.write(real, kept)
        if pending and not is_chatter(pending):
            os.write(real, pending)


def _restore():
    """At exit: put the real stderr back and let the filter pass on what is still in the pipe."""
    sys.stderr.flush()
    os.dup2(_STATE["real"], 2)  # closes this process's end of the pipe
    _STATE["thread"].join(timeout=2)
