"""The reference engine: one Keras `fit` per run, as a user would write it, except that the
mini-batches come in the run's own order (`training.epoch_orders`) rather than Keras' shuffle.

Other engines must match its results; every engine reports through `RunRecorder`, so run
folders, tables, reports and TensorBoard look the same whichever engine trained them.
"""

import time

from experiments.diagnostics import due, keras_probe
from experiments.training import epoch_orders, failure_reason, steps_per_epoch


def group_key(run, data):
    """Every run trains alone."""
    return run.run_id


def _record_callback(recorder, diagnose):
    import keras

    every, epochs = recorder.run.config["diagnostics"]["every"], recorder.run.config["epochs"]

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if due(0, every, epochs):
                recorder.diagnostics(0, *diagnose(self.model))

        def on_epoch_end(self, epoch, logs=None):
            if not recorder.epoch(logs or {}):
                self.model.stop_training = True  # diverged: NaN or inf loss
            elif due(epoch + 1, every, epochs):
                recorder.diagnostics(epoch + 1, *diagnose(self.model))

    return Record()


def batches(x, y, orders, batch_size):
    """A tf.data pipeline of every epoch's mini-batches, in the order `orders` (epochs, n) gives."""
    import tensorflow as tf

    x, y = tf.constant(x), tf.constant(y)
    per_epoch = tf.data.Dataset.from_tensor_slices(orders)
    indices = per_epoch.flat_map(lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size))
    return indices.map(lambda i: (tf.gather(x, i), tf.gather(y, i))).prefetch(2)


def fit_one(run, data, recorder):
    """Seed, build, compile, fit with validation each epoch, recording every epoch.

    Returns:
        (the trained model, its output head).
    """
    import keras

    from experiments import optimizers
    from models import build, head_for
    from models.losses import build_metrics, encode_targets
    from models.losses import get as get_loss

    config = run.config
    steps = steps_per_epoch(len(data.x_train), config["batch_size"])
    keras.utils.set_random_seed(config["seed"])  # python, numpy and TF: dropout
    head = head_for(data.task, config["loss"], data.n_classes, data.n_targets)
    model = build(config["model"], data.input_shape, head, config["initializer"],
                  config["bias_initializer"], config["seed"])
    model.compile(
        optimizer=optimizers.get(config["optimizer"], config["learning_rate"]),
        loss=get_loss(config["loss"]),
        metrics=build_metrics(config["metrics"], head),
        # one graph call per epoch: far less Python overhead, the same batches and updates
        steps_per_execution=steps,
    )
    probe = config["diagnostics"]["probe"]
    x_probe, y_probe = data.x_train[:probe], encode_targets(data.y_train[:probe], head)
    callbacks = [_record_callback(recorder, lambda model: keras_probe(model, config, head, x_probe, y_probe))]
    stopping = config["early_stopping"]
    if stopping["patience"]:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=stopping["monitor"], patience=stopping["patience"], min_delta=stopping["min_delta"],
            restore_best_weights=True,
        ))
    orders = epoch_orders(config["seed"], config["epochs"], len(data.x_train))
    model.fit(
        batches(data.x_train, encode_targets(data.y_train, head), orders, config["batch_size"]),
        steps_per_epoch=steps, epochs=config["epochs"], shuffle=False, verbose=0, callbacks=callbacks,
        validation_data=(data.x_val, encode_targets(data.y_val, head)), validation_batch_size=config["batch_size"],
    )
    return model, head


def train_one(run, data, recorder):
    """Fit, then unless the run diverged evaluate on the test and the training set: the two
    metrics dicts, or (None, None)."""
    from models.losses import encode_targets

    model, head = fit_one(run, data, recorder)
    if recorder.diverged:
        return None, None
    return tuple(model.evaluate(x, encode_targets(y, head), batch_size=256, verbose=0, return_dict=True)
                 for x, y in ((data.x_test, data.y_test), (data.x_train, data.y_train)))


def train_runs(jobs, data):
    """Train each `(run, recorder)` in turn; a failing run is recorded as failed and the rest go on.

    Returns:
        the list of result dicts, in order.
    """
    import keras
    import tensorflow as tf

    # a new model per run retraces by design; TF's warning about it is noise here
    tf.get_logger().setLevel("ERROR")
    results = []
    for run, recorder in jobs:
        started = time.perf_counter()
        recorder.start()
        try:
            test, train_set = train_one(run, data, recorder)
            result = recorder.finish("ok", time.perf_counter() - started, test, train_set=train_set)
        except OSError:
            raise  # the disk refused a record (`StorageError`): not a result of training
        except Exception as e:  # noqa: BLE001 - a failed run is data; the grid goes on
            result = recorder.finish("failed", time.perf_counter() - started, reason=failure_reason(e))
        keras.backend.clear_session()  # keep graph memory flat over long grids
        results.append(result)
    return results
