"""env.num_threads: a deterministic thread count chosen from the machine, never from timings."""
import pytest
import torch

from unimm.training.threads import choose_threads, set_threads


@pytest.mark.parametrize("setting, workers, cores, expected", [
    ("auto", 0, 2, 1), ("auto", 0, 1, 1), ("auto", 1, 2, 1), ("auto", 0, 16, 15), ("auto", 4, 16, 11), (3, 0, 2, 3),
])
def test_auto_leaves_a_core_to_the_machine_and_the_loader_workers(setting, workers, cores, expected):
    assert choose_threads(setting, workers, cores=cores) == expected


def test_set_threads_applies_and_reports(caplog):
    before = torch.get_num_threads()
    try:
        with caplog.at_level("INFO", logger="unimm"):
            assert set_threads(1) == 1
        assert torch.get_num_threads() == 1 and "torch CPU threads: 1 (env.num_threads=1" in caplog.text
    finally:
        torch.set_num_threads(before)
