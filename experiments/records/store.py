"""The output folder and how the suite writes to it: names and paths checked to stay inside it,
atomic files, moves instead of deletes, and fcntl locks between processes.

    <output>/runs/<name>/                  an experiment's runs (its TensorBoard logdir)
    <output>/reports/<name>/               its report
    <output>/retired/<name>/<time>/<run>   runs whose cell left the grid, moved out of the logdir

Every folder the suite writes, moves or deletes is resolved (symbolic links followed) and
checked to lie inside the output folder before anything changes. Files are written through a
temp file and a rename, so a killed process leaves the old file or the new one, and a failed
write (a full disk) leaves no half-written file. Locks are `fcntl.flock` on files under a
folder's `.locks/`: the kernel releases them when their process dies, however it dies.
"""

import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

from experiments.spec.names import check_name

LOCKS = ".locks"


def inside(path, root):
    """`path`, after checking that it resolves to `root` or a folder below it."""
    resolved, top = Path(path).resolve(), Path(root).resolve()
    if resolved != top and top not in resolved.parents:
        raise ValueError(f"{str(path)!r} resolves to {str(resolved)!r}, outside the output folder {str(top)!r}; "
                         "refusing to write there")
    return Path(path)


def check_output(output):
    """The output folder, checked before anything is written: a folder (or creatable) and writable."""
    root = Path(output)
    existing = next((p for p in (root, *root.absolute().parents) if p.exists()), None)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--output {str(output)!r} is a file, not a folder; name a folder (it is created if needed)")
    if existing is None or not existing.is_dir():
        raise ValueError(f"--output {str(output)!r}: {str(existing)!r} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ValueError(f"--output {str(output)!r} is not writable ({e.strerror} in {str(existing)!r}); "
                         "name a folder you can write to") from None
    return root


def experiment_dir(output, name):
    """`<output>/runs/<name>`, the name checked and the folder inside the output folder."""
    return inside(Path(output) / "runs" / check_name(name), output)


def report_dir(output, name):
    """`<output>/reports/<name>` (`claims` for the claims report)."""
    if name != "claims":
        check_name(name)
    return inside(Path(output) / "reports" / name, output)


def remove(path, root):
    """Delete a file or folder that lies strictly inside `root` (checked first)."""
    path = inside(path, root)
    if Path(path).resolve() == Path(root).resolve():
        raise ValueError(f"refusing to delete the folder {str(root)!r} itself")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def move(path, destination, root):
    """Move a folder inside `root` to another place inside `root` (both checked first)."""
    inside(path, root)
    inside(destination, root)
    Path(destination).parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, destination)


def stamp():
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"


# -- files ---------------------------------------------------------------------------------------


class StorageError(OSError):
    """Writing failed (a full disk, an unwritable folder): an environment problem, never a run result."""


def _file_mode():
    """0666 less the process's umask: the mode `open` gives a new file."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path, text, sync=True):
    """Write text to path through a temp file in the same folder and a rename (after an fsync,
    unless `sync` is False). On failure no file is left half-written and `StorageError` names it."""
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
            if sync:
                f.flush()
                os.fsync(f.fileno())

    write_with(path, write)


def write_with(path, write, suffix=".tmp"):
    """Write a file through `write(temporary path)` (a library that writes files itself, such as a
    Keras model, needs `suffix=".tmp.keras"`): a temp file in the same folder, then a rename;
    `StorageError` names the file when the disk refuses, and no half-written file is left."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.fchmod(fd, _file_mode())  # mkstemp makes 0600; a file of ours gets the user's umask
        os.close(fd)
    except OSError as e:
        raise StorageError(e.errno, f"cannot write {str(path)!r}: {e.strerror}") from None
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise StorageError(e.errno, f"cannot write {str(path)!r}: {e.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clean(value):
    """JSON has no NaN or inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def tensorboard_command(name, output="."):
    """The command that serves an experiment's TensorBoard records, right wherever it was run from."""
    return f"init-loss-lab tensorboard {name}" + (f" --output {output}" if str(output) != "." else "")


def write_json(path, obj):
    write_atomic(path, json.dumps(clean(obj), indent=2, sort_keys=False) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text())


def csv_text(rows):
    """A list of dicts as CSV text (columns in first-seen order)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_rows(path, rows, sync=True):
    write_atomic(path, csv_text(rows), sync)


# -- locks ---------------------------------------------------------------------------------------


def _lock_path(folder, key):
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    path = Path(folder) / LOCKS / f"{digest}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def locked(folder, key="folder"):
    """Hold the exclusive lock `key` of a folder (waiting for it); released on leaving the block
    or when the process dies."""
    fd = os.open(_lock_path(folder, key), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Claim:
    """Exclusive locks on a set of keys of one folder (the runs of a stacked group), taken in
    sorted order so two processes never wait for each other in a circle."""

    def __init__(self, folder, keys):
        self.paths = [_lock_path(folder, k) for k in sorted(set(keys))]
        self.fds = []

    def take(self, wait):
        """Take every lock; without `wait`, give up (holding none) when another process has one."""
        for path in self.paths:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                self.release()
                return False
            self.fds.append(fd)
        return True

    def release(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []
