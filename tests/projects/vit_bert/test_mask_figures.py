"""tools/plot_mask_sparsity.py: Figs. 4-5's table from a run's logged mask rows, and its files."""
from __future__ import annotations

import json

import pytest
import torch

from tests.helpers import tool_fixture

tool = tool_fixture("plot_mask_sparsity")
PNG = b"\x89PNG\r\n\x1a\n"


def mask_row(update: int, round_: int, b0: float, b1: float, norm: float = 0.0) -> dict:
    # as the run log writes a train row of a run with iterative_gradient_mask (b0, b1 of equal size)
    return {"update": update, "phase": "train", "time": 0.0, "loss": 1.0, "mask/round": float(round_),
            "mask/sparsity": (b0 + b1) / 2, "mask/block/encoder.blocks.0": b0, "mask/block/encoder.blocks.1": b1,
            "mask/block/encoder.norm": norm}


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "pretrain"
    folder.mkdir()
    rows = [mask_row(1, 1, 0.05, 0.15), mask_row(10, 1, 0.05, 0.15), {"update": 10, "phase": "val", "acc": 0.5},
            mask_row(20, 2, 0.05, 0.35), mask_row(30, 3, 0.15, 0.45), mask_row(40, 3, 0.15, 0.45)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_the_table_holds_each_blocks_sparsity_after_each_round_and_at_the_end(tool, run):
    table = tool.sparsity_table(tool.read_rows(run))
    assert table["blocks"] == ["encoder.blocks.0", "encoder.blocks.1", "encoder.norm"]
    assert [(r["round"], r["update"]) for r in table["rounds"]] == [(1, 1), (2, 20), (3, 30)]  # first row of each
    assert table["rounds"][1]["sparsity"] == pytest.approx({"encoder.blocks.0": 5.0, "encoder.blocks.1": 35.0,
                                                            "encoder.norm": 0.0})
    assert table["final"]["update"] == 40 and table["final"]["overall"] == pytest.approx(30.0)
    assert table["updates"] == [1, 10, 20, 30, 40]  # the val row holds no mask keys: passed over


def test_the_figures_and_the_table_are_written(tool, run, tmp_path):
    written = tool.write_figures(run, tmp_path / "out")
    for name in ("fig4", "over_updates"):
        assert written[name].read_bytes()[:8] == PNG
    assert "fig5" not in written  # no checkpoint holds a mask
    text = written["markdown"].read_text()
    assert "| block | round 1 (update 1) | round 2 (update 20) | round 3 (update 30) | end (update 40, round 3) |" in text
    assert "| encoder.blocks.1 | 15.0 | 35.0 | 45.0 | 45.0 |" in text
    assert "| whole mask | 10.0 | 20.0 | 30.0 | 30.0 |" in text
    saved = json.loads(written["json"].read_text())
    assert saved["final"]["sparsity"]["encoder.blocks.0"] == pytest.approx(15.0)
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind
    assert saved["unlogged_rounds"] == [] and "fell between" not in text


def test_rounds_between_two_logged_rows_are_named(tool, run):
    rows = [mask_row(1, 1, 0.05, 0.15), mask_row(50, 3, 0.15, 0.45)]  # round 2 came and went unlogged
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = tool.sparsity_table(tool.read_rows(run))
    assert tool.missing_rounds(table) == [2]
    assert "Rounds 2 fell between two logged rows" in tool.render_markdown(table, run)


def test_fig_5_draws_the_masks_kept_in_checkpoints(tool, run):
    masks = {"encoder.blocks.0.w": torch.ones(3, 3, dtype=torch.bool), "encoder.blocks.1.w": torch.eye(4).bool()}
    for update in (20, 40):
        folder = run / "checkpoints" / f"update_{update}"
        folder.mkdir(parents=True)
        torch.save({"hooks": [{"masks": masks, "observed": update}], "counters": {"update": update}},
                   folder / "training_state.pt")
    assert [u for u, _ in tool.checkpoint_masks(run)] == [20, 40]
    picture = tool.square(masks, "encoder.blocks.0")  # 9 entries: a 3 x 3 square
    assert picture.shape == (3, 3) and picture.min() == 1.0
    assert tool.square({"b.0.w": torch.tensor([True, False])}, "b.0").tolist() == [[1.0, 0.0], [0.5, 0.5]]  # padded
    written = tool.write_figures(run)
    assert written["fig5"] == run / "mask_figures" / "fig5_masks.png" and written["fig5"].read_bytes()[:8] == PNG


def test_a_run_without_gradient_masking_is_a_clear_error(tool, tmp_path, capsys):
    folder = tmp_path / "no_gm"
    folder.mkdir()
    (folder / "metrics.jsonl").write_text(json.dumps({"update": 1, "phase": "train", "loss": 1.0}) + "\n")
    with pytest.raises(tool.MaskRunError, match=r"no_gm/metrics.jsonl has no mask/block/<block> rows: .*"
                                                r"without gradient masking.*iterative_gradient_mask"):
        tool.read_rows(folder)
    assert tool.main([str(folder)]) == 2 and "pretrain.yaml" in capsys.readouterr().err
    with pytest.raises(tool.MaskRunError, match=r"absent/metrics.jsonl does not exist: give the folder"):
        tool.read_rows(tmp_path / "absent")
    (folder / "metrics.jsonl").write_text("{broken\n")
    with pytest.raises(tool.MaskRunError, match=r"metrics.jsonl:1 is not a JSON line"):
        tool.read_rows(folder)
