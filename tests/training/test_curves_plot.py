"""curves.png as people read it: which panels a run's history gives, and that they are drawn."""
from __future__ import annotations

from unimm.training.run_log import curves_figure, curves_layout, plot_curves


def rows(train_updates, evals, datasets=("coco", "vqa2")):
    """A history: training rows with two losses per dataset and lr, evaluations at ``evals``."""
    history = []
    for update in train_updates:
        losses = {f"{d}/{loss}": 1.0 / update for d in datasets for loss in ("ce", "aux_ce")}
        history.append({"update": update, "phase": "train", "time": 0.0, **losses, "lr": 1e-4})
    for update in evals:
        metrics = {f"{d}/accuracy": 0.5 for d in datasets}
        history.append({"update": update, "phase": "val", "time": 0.0, "coco/ce": 0.9, **metrics})
    return history


def test_one_panel_per_loss_and_one_for_the_learning_rate():
    layout = curves_layout(rows([10, 20, 30], evals=[30]))
    assert layout.lr is not None and layout.lr.lines[0][1:] == ([10, 20, 30], [1e-4] * 3)
    assert [p.title for p in layout.losses] == ["coco/aux_ce", "coco/ce", "vqa2/aux_ce", "vqa2/ce"]
    assert all([line[0] for line in p.lines] == ["train"] for p in layout.losses)  # val once: no lone dot


def test_metrics_evaluated_once_are_bars_not_panels():
    layout = curves_layout(rows([10, 20], evals=[20]))
    assert layout.metrics == []
    assert layout.table == [("coco/accuracy", 0.5, 20), ("vqa2/accuracy", 0.5, 20)]  # a loss never a bar


def test_metrics_evaluated_twice_are_lines_per_dataset_and_val_losses_join_their_panel():
    layout = curves_layout(rows([10, 20, 30, 40], evals=[20, 40]))
    assert layout.table == []
    assert [(p.title, [line[0] for line in p.lines]) for p in layout.metrics] == [
        ("coco metrics", ["accuracy"]), ("vqa2 metrics", ["accuracy"])]
    coco_ce = next(p for p in layout.losses if p.title == "coco/ce")
    assert [line[0] for line in coco_ce.lines] == ["train", "val"]
    assert coco_ce.lines[1][1:] == ([20, 40], [0.9, 0.9])


def test_a_dataset_keeps_one_colour_in_every_panel():
    layout = curves_layout(rows([10, 20], evals=[10, 20]))
    colours = {p.title.split("/")[0].split()[0]: set() for p in layout.losses + layout.metrics}
    for panel in layout.losses + layout.metrics:
        colours[panel.title.split("/")[0].split()[0]].add(panel.colour)
    assert all(len(c) == 1 for c in colours.values()) and colours["coco"] != colours["vqa2"]


def test_non_finite_values_are_left_out():
    history = rows([10, 20], evals=[])
    history[1]["coco/ce"] = float("nan")
    layout = curves_layout(history)
    assert next(p for p in layout.losses if p.title == "coco/ce").lines[0][1:] == ([10], [1.0 / 10])


def test_eight_datasets_draw_one_axis_per_panel_and_one_for_the_bars(tmp_path):
    datasets = ("coco", "vg", "vqa2", "snli_ve", "qnli", "mnli", "qqp", "sst2")
    history = rows(range(100, 1100, 100), evals=[1000], datasets=datasets)
    layout = curves_layout(history)
    fig = curves_figure(layout)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "learning rate"
    assert titles[1:17] == sorted(f"{d}/{loss}" for d in datasets for loss in ("ce", "aux_ce"))
    assert titles[-1] == "metrics evaluated once (at update 1000)"
    bars = fig.axes[-1]
    assert [t.get_text() for t in bars.get_yticklabels()] == [f"{d}/accuracy" for d in sorted(datasets)]
    assert len(fig.axes) == 1 + 16 + 1
    plot_curves(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_is_written_without_a_finite_value(tmp_path):
    plot_curves([{"update": 1, "phase": "train", "time": 0.0, "a/loss": float("inf")}], tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()
