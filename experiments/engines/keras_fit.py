"""The reference engine: one Keras `fit` per run, as a user would write it, except that the
mini-batches come in the run's own order (`procedure.epoch_orders`) rather than Keras' shuffle.
Tuner trials train with the same `build_model` and `fit`.

Other engines must match its results; every engine reports through `RunRecorder`, so run
folders, tables, reports and TensorBoard look the same whichever engine trained them.
"""

import time

from experiments.engines.diagnostics import due, keras_probe
from experiments.engines.procedure import early_stopping, epoch_orders, failure_reason, steps_per_epoch
from models import build, head_for
from models.losses import encode_targets
from models.losses import get as get_loss
from models.metrics import build_metrics
from models.optimizers import get as get_optimizer


def group_key(run, data):
    """Every run trains alone."""
    return run.run_id


def _record_callback(recorder, diagnose):
    import keras

    every, epochs = recorder.run.config.diagnostics.every, recorder.run.config.epochs

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


def build_model(config, data):
    """Seed, build and compile a run's model (`config`: a run's resolved config).

    Returns:
        (the compiled model, its output head).
    """
    import keras

    keras.utils.set_random_seed(config.seed)  # python, numpy and TF: dropout
    head = head_for(data.task, config.loss, data.n_classes, data.n_targets)
    model = build(config.model, data.input_shape, head, config.initializer, config.bias_initializer,
                  config.seed)
    model.compile(
        optimizer=get_optimizer(config.optimizer, config.learning_rate),
        loss=get_loss(config.loss),
        metrics=build_metrics(config.metrics, head, data.target_scale),
        # one graph call per epoch: far less Python overhead, the same batches and updates
        steps_per_execution=steps_per_epoch(len(data.x_train), config.batch_size),
    )
    return model, head


def fit(model, head, config, data, recorder, callbacks=(), initial_epoch=0, epochs=None):
    """Fit with validation each epoch, in the run's batch order, recording every epoch through
    `recorder` (a `RunRecorder`: it stops the fit when the run diverges); early stopping restores
    the best weights. `callbacks`, `initial_epoch` and `epochs` come from keras-tuner in a trial."""
    epochs = epochs or config.epochs
    steps = steps_per_epoch(len(data.x_train), config.batch_size)
    probe = config.diagnostics.probe
    x_probe, y_probe = data.x_train[:probe], encode_targets(data.y_train[:probe], head)
    stopping = early_stopping(config.early_stopping)
    diagnose = lambda m: keras_probe(m, config.model, config.loss, head, x_probe, y_probe)  # noqa: E731
    callbacks = [*callbacks, _record_callback(recorder, diagnose), *([stopping] if stopping else [])]
    orders = epoch_orders(config.seed, epochs, len(data.x_train))[initial_epoch:]
    return model.fit(
        batches(data.x_train, encode_targets(data.y_train, head), orders, config.batch_size),
        steps_per_epoch=steps, epochs=epochs, initial_epoch=initial_epoch, shuffle=False, verbose=0,
        callbacks=callbacks, validation_data=(data.x_val, encode_targets(data.y_val, head)),
        validation_batch_size=config.batch_size,
    )


def train_one(run, data, recorder):
    """Fit, then unless the run diverged evaluate on the test and the training set.

    Returns:
        (the trained model, the test metrics, the training-set metrics); the metrics are None
        when the run diverged.
    """
    model, head = build_model(run.config, data)
    fit(model, head, run.config, data, recorder)
    if recorder.diverged:
        return model, None, None
    return model, *(model.evaluate(x, encode_targets(y, head), batch_size=256, verbose=0, return_dict=True)
                    for x, y in ((data.x_test, data.y_test), (data.x_train, data.y_train)))


def train_runs(jobs, data, group_size=None):  # noqa: ARG001 - every run trains alone
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
            model, test, train_set = train_one(run, data, recorder)
            result = recorder.finish("ok", time.perf_counter() - started, test, train_set=train_set, model=model)
        except OSError:
            raise  # the disk refused a record (`StorageError`): not a result of training
        except Exception as e:  # noqa: BLE001 - a failed run is data; the grid goes on
            result = recorder.finish("failed", time.perf_counter() - started, reason=failure_reason(e))
        keras.backend.clear_session()  # keep graph memory flat over long grids
        results.append(result)
    return results
