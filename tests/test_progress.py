"""What a training run shows while it runs: a live bar on a terminal, a periodic
plain line elsewhere, epochs counted from 1 in the console, history.csv and the
curves, and curves.png drawn at the end and at most every few seconds."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest

from archc.train import history as H
from archc.train import loop, progress
from tests.helpers import compile_str
from tests.test_training import PLAIN, needs_torch


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


SUMS = np.array([0.5 * 64, 48.0, 64.0])  # loss*n, correct, n: loss 0.5, accuracy 0.75


def test_a_log_file_gets_a_plain_line_every_interval():
    out = io.StringIO()
    bar = progress.Progress(0, 3, 10, stream=out, interval=0.0)
    assert bar.bar is None  # not a terminal: no live bar
    bar.update(1, SUMS, 64)
    bar.update(3, SUMS, 128)
    bar.finish("epoch 1/3  done")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1] == "epoch 1/3  done"
    assert re.fullmatch(
        r"epoch 1/3  step 2/10 \(20%\)  loss 0\.5000  acc 0\.7500  "
        r"[\d,]+ img/s  \d+:\d\d elapsed  ETA \d+:\d\d",
        lines[0],
    ), lines[0]
    assert "step 4/10 (40%)" in lines[1]


def test_a_log_file_gets_no_line_before_the_interval():
    out = io.StringIO()
    bar = progress.Progress(1, 3, 10, stream=out)  # 30 s
    for step in range(10):
        bar.update(step, SUMS, 64 * (step + 1))
    bar.finish("epoch 2/3  done")
    assert out.getvalue() == "epoch 2/3  done\n"


def test_a_terminal_gets_a_live_bar_with_eta_and_images_per_second():
    pytest.importorskip("rich")
    out = Terminal()
    bar = progress.Progress(0, 8, 10, stream=out, start_step=2)
    assert bar.bar is not None
    bar.update(4, SUMS, 192)
    bar.bar.refresh()
    shown = out.getvalue()
    bar.finish("epoch 1/8  done")
    assert "epoch 1/8" in shown and "5/10" in shown
    assert "loss 0.5000" in shown and "acc 0.7500" in shown
    assert "img/s" in shown and "ETA" in shown
    assert out.getvalue().endswith("epoch 1/8  done\n")


def test_quiet_means_nothing():
    out = Terminal()
    bar = progress.Progress(0, 3, 10, stream=out, enabled=False, interval=0.0)
    bar.update(1, SUMS, 64)
    bar.finish("epoch 1/3  done")
    assert out.getvalue() == "" and bar.bar is None


def test_curves_are_drawn_at_most_every_interval_and_always_at_the_end(monkeypatch):
    drawn = []
    monkeypatch.setattr(H, "plot_history", lambda d, h, t: drawn.append(len(h)))
    clock = [100.0]
    monkeypatch.setattr(H.time, "monotonic", lambda: clock[0])
    curves = H.CurvesPlot("run", "title", interval=10.0)
    history = []
    for epoch in range(1, 9):  # an epoch every 3 s
        history.append({"epoch": epoch})
        curves.update(history, final=epoch == 8)
        clock[0] += 3.0
    assert drawn == [5, 8]  # at 112 s (12 s after the start) and at the end
    curves.update(history, final=True)  # already drawn with every epoch: not again
    assert drawn == [5, 8] and curves.draws == 2


def test_curves_have_whole_number_epoch_ticks_from_1():
    pytest.importorskip("matplotlib")
    history = [
        {"epoch": e, "loss": 1 / e, "accuracy": e / 3, "val_loss": 1 / e, "val_accuracy": e / 3}
        for e in (1, 2, 3)
    ]
    fig = H.curves_figure(history, "t")
    for ax in fig.axes:
        assert list(ax.lines[0].get_xdata()) == [1, 2, 3]
        ticks = ax.get_xticks()
        assert all(float(t).is_integer() for t in ticks), ticks


@needs_torch
def test_epochs_are_counted_alike_in_console_history_and_curves(tmp_path, capsys, monkeypatch):
    plotted = []
    real = H.plot_history
    monkeypatch.setattr(
        H,
        "plot_history",
        lambda d, h, t: plotted.append([r["epoch"] for r in h]) or real(d, h, t),
    )
    settings_out = tmp_path / "run"
    ir = compile_str(PLAIN)
    from tests.test_training import make_trainer, setup

    settings, dataset = setup(ir, "torch", epochs=3, batch_size=256)
    result = loop.train(
        ir, settings, dataset, make_trainer(ir, settings), str(settings_out), progress=True
    )
    assert result.status == 0
    console = re.findall(r"^epoch (\d+)/3 ", capsys.readouterr().err, flags=re.MULTILINE)
    with open(settings_out / "history.csv", encoding="utf-8") as f:
        history = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert console == ["1", "2", "3"]
    assert history == [1, 2, 3] == [h["epoch"] for h in result.history]
    assert plotted == [[1, 2, 3]]  # a quick run: drawn once, at its end
