"""The report's plots label their axes in plain text: `pyplot` turns TeX off (a `$` in a user's
name is text), so a log axis left to matplotlib's own labels would show `$\\mathdefault{10^{-3}}$`."""

import pandas as pd
import pytest
from matplotlib.figure import Figure
from test_tune_report import _search

from experiments.reporting.plots import plot_layers
from experiments.reporting.tune_report import build_tune_report


@pytest.fixture
def drawn(monkeypatch):
    """The tick labels of every figure the suite saves, as drawn."""
    labels = []
    save = Figure.savefig

    def spy(fig, *args, **kwargs):
        save(fig, *args, **kwargs)
        labels.append([t.get_text() for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels()])

    monkeypatch.setattr(Figure, "savefig", spy)
    return labels


def _plain(labels):
    shown = [text for figure in labels for text in figure if text]
    assert shown and not [text for text in shown if "$" in text or "\\" in text], shown


def test_the_tuner_reports_log_axes_read_as_numbers(tmp_path, drawn):
    build_tune_report(_search(tmp_path), None, tmp_path / "reports" / "tiny")
    assert len(drawn) == 2  # learning rate, batch size
    _plain(drawn)
    learning_rate, batch_size = drawn
    assert {"0.001", "0.01"} <= set(learning_rate) and {"16", "32"} <= set(batch_size)


def test_the_layers_plots_log_axis_reads_as_numbers(tmp_path, drawn):
    rows = [{"initializer": init, "loss": "mse", "seed": 0, "step": 0, "quantity": quantity, "layer": layer,
             "value": value * (10 if init == "ones" else 1)}
            for init in ("he_normal", "ones") for quantity in ("activation_std", "gradient_std")
            for layer, value in (("hidden_0", 0.5), ("hidden_1", 0.01), ("output", 0.002))]
    plot_layers(pd.DataFrame(rows), ["initializer", "loss"], tmp_path / "layers.png")
    _plain(drawn)
    assert {"0.01", "0.1"} <= set(drawn[0])
