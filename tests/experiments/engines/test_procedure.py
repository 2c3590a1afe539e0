"""The shared training procedure's pieces that are not covered through the engines."""

from experiments.engines.procedure import clear_keras_session


def test_clearing_keras_between_groups_resets_its_names_and_keeps_what_saving_caches(tmp_path):
    import keras
    from keras.src.saving import saving_lib

    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(tmp_path / "a.keras")
    assert keras.layers.Dense(2).name != "dense"  # the name counter has counted
    clear_keras_session()
    assert keras.layers.Dense(2).name == "dense"  # cleared
    for kind in ("Layer", "Sequential"):  # computed by the save above, found now without building anew
        assert saving_lib.get_attr_skipset(kind) is saving_lib.get_attr_skipset(kind)
