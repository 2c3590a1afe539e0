"""The reference engine: one Keras `fit` per run, exactly as a user would write it.

Other engines must match its results; every engine reports through `RunRecorder`, so run
folders, tables, reports and TensorBoard look the same whichever engine trained them.
"""

import time

# Several steps per graph call cut Python overhead; results are identical to 1 (the batches and
# updates are the same), only callbacks fire less often within an epoch.
STEPS_PER_EXECUTION = 32


def _record_callback(recorder):
    import keras

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if not recorder.epoch(logs or {}):
                self.model.stop_training = True  # diverged: NaN or inf loss

    return Record()


def train_one(run, data, recorder):
    """Seed, build, compile, fit with validation each epoch, evaluate on test; record it all."""
    import keras

    from experiments import optimizers
    from models import build, head_for
    from models.losses import build_metrics, encode_targets
    from models.losses import get as get_loss

    config = run.config
    keras.utils.set_random_seed(config["seed"])  # python, numpy and TF: shuffling order, dropout
    head = head_for(data.task, config["loss"], data.n_classes, data.n_targets)
    model = build(config["model"], data.input_shape, head, config["initializer"],
                  config["bias_initializer"], config["seed"])
    model.compile(
        optimizer=optimizers.get(config["optimizer"], config["learning_rate"]),
        loss=get_loss(config["loss"]),
        metrics=build_metrics(config["metrics"], head),
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    callbacks = [_record_callback(recorder)]
    stopping = config["early_stopping"]
    if stopping["patience"]:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=stopping["monitor"], patience=stopping["patience"], min_delta=stopping["min_delta"],
            restore_best_weights=True,
        ))
    model.fit(
        data.x_train, encode_targets(data.y_train, head),
        validation_data=(data.x_val, encode_targets(data.y_val, head)),
        batch_size=config["batch_size"], epochs=config["epochs"], shuffle=True, verbose=0,
        callbacks=callbacks,
    )
    if recorder.diverged:
        return None
    return model.evaluate(data.x_test, encode_targets(data.y_test, head), batch_size=256, verbose=0,
                          return_dict=True)


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
            test = train_one(run, data, recorder)
            result = recorder.finish("ok", time.perf_counter() - started, test)
        except Exception as e:  # noqa: BLE001 - a failed run is data; the grid goes on
            reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            result = recorder.finish("failed", time.perf_counter() - started, reason=reason)
        keras.backend.clear_session()  # keep graph memory flat over long grids
        results.append(result)
    return results
