"""SIGTERM and Ctrl-C stop a command the same way: a KeyboardInterrupt raised where the program is
(`Terminated` for SIGTERM), repeated until it lands, so the command prints one line and a rerun
resumes."""

import signal
import sys


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, like Ctrl-C's KeyboardInterrupt."""


_STOP = {"signal": None}  # the stop signal received, until the interrupt has landed


def stop(signum, frame):
    """SIGTERM or Ctrl-C: raise the interrupt where the program is. Python drops an exception
    raised in a destructor or weakref callback (TensorFlow runs many during garbage collection),
    so until the interrupt lands the raise is repeated every 50 ms (SIGALRM)."""
    if signum != signal.SIGALRM:
        _STOP["signal"] = signum
        signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
    if _STOP["signal"] is None or isinstance(sys.exc_info()[1], KeyboardInterrupt):
        return  # no stop asked, or the interrupt is being handled already
    raise Terminated() if _STOP["signal"] == signal.SIGTERM else KeyboardInterrupt()


def quiet_about_dropped_stops(info):
    """Python reports an exception a callback dropped; an interrupt it dropped is repeated (`stop`)."""
    if not isinstance(info.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(info)


def stopped():
    """The interrupt has landed: no more repeats."""
    _STOP["signal"] = None
    signal.setitimer(signal.ITIMER_REAL, 0)
