"""One run's TensorBoard record: epoch scalars and its HParams session.

Layout under the run's folder (Keras' own convention, so train and validation curves share a
chart, and HParams metric groups resolve to these subfolders):

    <run>/            HParams session start and end (the end carries the true status)
    <run>/train/      epoch_<metric> per epoch
    <run>/validation/ epoch_<metric> per epoch (the history's val_<metric>)
    <run>/test/       epoch_<metric> once, at the last epoch

Events are written with TensorBoard's own protobuf writers, not TensorFlow ops: the same files
as `tf.summary` writes, without an op dispatch per value (hundreds of runs log at once).
"""

import time
from pathlib import Path

GROUPS = {"": "train", "val_": "validation", "test_": "test"}


def split_metric(key):
    """`val_accuracy` -> ("validation", "accuracy"); `loss` -> ("train", "loss")."""
    for prefix, group in GROUPS.items():
        if prefix and key.startswith(prefix):
            return group, key[len(prefix):]
    return "train", key


class RunLog:
    """Writes one run's events; call `epoch` per epoch, `test` once, `end` last."""

    def __init__(self, run_dir, group_name, hparams):
        from tensorboard.plugins.hparams import api as hp

        self.run_dir, self.writers = Path(run_dir), {}
        # the group name is the cell, so the seed repeats of a cell form one session group
        self.write("session", 0, hp.hparams_pb(hparams, trial_id=group_name))

    def write(self, group, step, summary):
        """Append a `Summary` proto to a group's event file."""
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        if not isinstance(summary, Summary):  # some helpers return TensorFlow's copy of the proto
            summary = Summary.FromString(summary.SerializeToString())
        if group not in self.writers:
            path = self.run_dir if group == "session" else self.run_dir / group
            self.writers[group] = EventFileWriter(str(path), max_queue_size=1000)
        self.writers[group].add_event(Event(wall_time=time.time(), step=step, summary=summary))

    def scalars(self, step, logs):
        """Write `{metric: value}` with train/val_/test_ prefixes to their groups."""
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb

        for key, value in logs.items():
            group, name = split_metric(key)
            self.write(group, step, scalar_pb(f"epoch_{name}", value))

    def end(self, status):
        from tensorboard.plugins.hparams import api_pb2
        from tensorboard.plugins.hparams import summary as hparams_summary

        code = api_pb2.STATUS_SUCCESS if status == "ok" else api_pb2.STATUS_FAILURE
        self.write("session", 0, hparams_summary.session_end_pb(code))
        for writer in self.writers.values():
            writer.close()
