from pathlib import Path

import pytest

from experiments.spec import SpecError, apply_overrides, expand, load_config, parse_value, validate

CONFIGS = sorted(Path(__file__).resolve().parents[3].joinpath("experiments", "configs").glob("*.toml"))
STANDARD_SETS = ["epochs=1", "seeds=[0]", "initializers=['he_normal','zeros']"]


def test_configs_are_shipped():
    assert {p.name for p in CONFIGS} >= {"digits_init_x_loss.toml", "breast_cancer_losses.toml",
                                         "regression_outliers_losses.toml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_is_documented_and_takes_the_standard_overrides(path):
    config = load_config(path)
    doc = config["description"]
    for needed in ("Purpose", "Run:", "Expected runtime", "Expected outcome"):
        assert needed in doc, f"{path.name} docstring lacks {needed!r}"
    spec, _ = validate(apply_overrides(config, STANDARD_SETS))
    runs = expand(spec)
    assert spec.epochs == 1 and {r.axes["seed"] for r in runs} == {0}
    assert len(runs) == 2 * len(spec.losses)


def test_digits_default_grid_is_the_issue_grid():
    spec, (data,) = validate(load_config(CONFIGS[[p.stem for p in CONFIGS].index("digits_init_x_loss")]))
    runs = expand(spec)
    assert len(runs) == 6 * 3 * 3 and data.name == "digits"
    assert len({r.run_id for r in runs}) == len(runs)
    assert runs[0].run_id == "digits/random_normal__mean_squared_error/seed_0"


def test_list_valued_axes_span_the_grid(config_file):
    config = apply_overrides(load_config(config_file()), ["learning_rate=[0.01, 0.1]", "batch_size=[8, 16]"])
    spec, _ = validate(config)
    runs = expand(spec)
    assert len(runs) == 2 * 2 * 2 * 2 * 2
    assert runs[0].run_id == "moons/he_normal__binary_crossentropy__lr0.01__bs8/seed_0"
    assert runs[0].config.learning_rate == 0.01 and runs[0].axes["batch_size"] == 8


def test_parse_value():
    assert parse_value("1") == 1 and parse_value("[0, 1]") == [0, 1] and parse_value("sgd") == "sgd"
    assert parse_value("true") is True and parse_value("{'name': 'huber', 'delta': 0.5}")["delta"] == 0.5
    # TOML as in a config file, inline tables included; a TOML date stays the string it was
    assert parse_value('{ name = "sgd", momentum = 0.9 }') == {"name": "sgd", "momentum": 0.9}
    assert parse_value("[{ name = 'huber', delta = 0.5 }, 'mean_squared_error']")[0]["delta"] == 0.5
    assert parse_value("1e-3") == 0.001 and parse_value("True") is True and parse_value("2024-01-01") == "2024-01-01"
    with pytest.raises(ValueError, match="is not a literal"):
        parse_value("[10**6]")


def test_dotted_overrides_turn_a_name_into_a_table(config_file):
    config = apply_overrides(load_config(config_file()), ["dataset.noise=0.3", "model.widths=[4, 4]"])
    assert config["dataset"] == {"name": "moons", "n_samples": 80, "noise": 0.3}
    assert config["model"]["widths"] == [4, 4]


def test_validation_reports_every_problem_at_once(config_file):
    config = apply_overrides(load_config(config_file()), [
        "initializers=['he_normal', 'glorot']", "batch_size=0", "learning_rate=-1.0", "losses=['huber', 'hinge']"])
    with pytest.raises(SpecError) as caught:
        validate(config)
    problems = caught.value.problems
    assert len(problems) == 4
    assert any("'glorot'" in p for p in problems) and any("'hinge'" in p for p in problems)


def test_integer_learning_rate_and_list_tables(config_file):
    spec, _ = validate(apply_overrides(load_config(config_file()), ["learning_rate=1"]))
    assert spec.learning_rate == (1,)
    with pytest.raises(SpecError, match="'optimizer' is a list here"):
        apply_overrides(load_config(config_file(optimizer=["adam", "sgd"])), ["optimizer.momentum=0.9"])


def test_editing_the_description_keeps_runs_the_same(config_file):
    a = expand(validate(load_config(config_file(description="one")))[0])
    b = expand(validate(load_config(config_file(description="two")))[0])
    assert [r.config for r in a] == [r.config for r in b] and "description" not in a[0].config.as_dict()


def test_cells_whose_labels_sanitize_alike_get_their_own_folders(tmp_path):
    """`a b.csv` and `a_b.csv` both slug to `a_b.csv`: each cell's folder gets a hash of its values."""
    rows = "a,b,label\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(40))
    datasets = []
    for name in ("a b.csv", "a_b.csv"):
        (tmp_path / name).write_text(rows)
        datasets.append({"name": "csv", "path": str(tmp_path / name), "target": "label"})
    spec, _ = validate({"name": "x", "dataset": datasets, "initializers": ["he_normal"],
                        "losses": ["binary_crossentropy"]})
    runs = expand(spec)
    assert len({r.run_id for r in runs}) == len({r.cell for r in runs}) == 2
    assert all(len(r.run_id.split("/")[1]) <= 120 for r in runs)
    long, _ = validate({"name": "y", "dataset": [{**datasets[0], "path": str(tmp_path / "a b.csv"),
                                                  "target": "label", "task": t} for t in ("auto", "binary")],
                        "initializers": ["he_normal"], "losses": ["binary_crossentropy"]})
    assert len({r.run_id for r in expand(long)}) == 2


def test_a_toml_inline_table_overrides_a_table(config_file):
    config = apply_overrides(load_config(config_file()), ['optimizer={ name = "sgd", momentum = 0.9 }'])
    spec, _ = validate(config)
    assert spec.optimizer == ({"name": "sgd", "momentum": 0.9},)


def test_engine_memory_splits_a_large_group_into_stacks_and_the_grid_is_refused_only_if_they_cannot_fit(
        monkeypatch):
    from experiments.runner import training_groups
    from experiments.spec import budget
    from initializers.registry import label

    monkeypatch.setattr(budget, "available_bytes", lambda: 3 * budget.GIB)
    monkeypatch.setattr(budget, "machine_bytes", lambda: 16 * budget.GIB)
    grid = {"name": "many", "dataset": "digits", "model": {"name": "mlp", "widths": [64, 64]},
            "initializers": ["he_normal", "glorot_uniform"], "losses": ["categorical_crossentropy", "huber"],
            "seeds": list(range(300))}
    spec, (data,) = validate({**grid, "engine_memory": 1})
    one = budget.member_bytes(spec.model[0], data, 32, spec.diagnostics.probe)
    with pytest.raises(SpecError, match=rf"needs an estimated .* GiB .*stacks of {int(4 * budget.GIB // one)} runs "
                                        r".* or a smaller engine_memory"):
        validate(grid)  # the default budget is a quarter of the machine's 16 GiB: more than the 3 GiB available
    stacks = training_groups(expand(spec), {label(spec.dataset[0]): data}, budget.stack_budget(spec))
    fits = int(budget.GIB // one)
    assert len(stacks) == -(-1200 // fits) > 1 and max(len(s) for s in stacks) <= fits
    assert max(len(s) for s in stacks) - min(len(s) for s in stacks) <= 1  # as equal as they fit
    assert sorted(r.run_id for s in stacks for r in s) == sorted(r.run_id for r in expand(spec))
