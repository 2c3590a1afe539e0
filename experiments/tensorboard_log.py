"""One run's TensorBoard record: epoch scalars and its HParams session.

Layout under the run's folder (Keras' own convention, so train and validation curves share a
chart, and HParams metric groups resolve to these subfolders):

    <run>/            HParams session start and end (the end carries the true status)
    <run>/train/      epoch_<metric> per epoch
    <run>/validation/ epoch_<metric> per epoch (the history's val_<metric>)
    <run>/test/       epoch_<metric> once, at the last epoch
"""

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
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        self.tf, self.run_dir, self.writers = tf, Path(run_dir), {}
        with self._writer("session").as_default():
            # the group name is the cell, so the seed repeats of a cell form one session group
            hp.hparams(hparams, trial_id=group_name)

    def _writer(self, group):
        if group not in self.writers:
            path = self.run_dir if group == "session" else self.run_dir / group
            self.writers[group] = self.tf.summary.create_file_writer(str(path))
        return self.writers[group]

    def scalars(self, step, logs):
        """Write `{metric: value}` with train/val_/test_ prefixes to their groups."""
        for key, value in logs.items():
            group, name = split_metric(key)
            with self._writer(group).as_default():
                self.tf.summary.scalar(f"epoch_{name}", value, step=step)

    def end(self, status):
        from tensorboard.plugins.hparams import api_pb2
        from tensorboard.plugins.hparams import summary as hparams_summary

        code = api_pb2.STATUS_SUCCESS if status == "ok" else api_pb2.STATUS_FAILURE
        pb = hparams_summary.session_end_pb(code)
        with self._writer("session").as_default():
            self.tf.summary.experimental.write_raw_pb(pb.SerializeToString(), step=0)
        for writer in self.writers.values():
            writer.close()
