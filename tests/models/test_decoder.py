import pytest
import torch

from unimm.config.errors import ConfigError
from unimm.models.decoders.detr_decoder import detr_decoder
from unimm.models.encoded_sequence import EncodedSequence


def test_query_sets_have_their_counts():
    decoder = detr_decoder({"coco": 100, "snli_ve": 1}, hidden_size=32, num_layers=2, num_heads=2, ffn_size=64)
    assert decoder.num_queries() == {"coco": 100, "snli_ve": 1}
    memory = EncodedSequence(torch.randn(3, 9, 32), torch.zeros(3, 9, dtype=torch.bool), torch.randn(3, 9, 32))
    assert decoder(memory, "coco").shape == (2, 3, 100, 32)
    assert decoder(memory, "snli_ve").shape == (2, 3, 1, 32)
    with pytest.raises(KeyError, match="no queries for dataset 'vg'"):
        decoder(memory, "vg")


@pytest.mark.parametrize("counts, match", [({}, "num_queries"), ({"a": 0}, "num_queries.a: 0 queries"),
                                           ({"a.b": 3}, "cannot key model parameters")])
def test_bad_query_sets_are_refused(counts, match):
    with pytest.raises(ConfigError, match=match):
        detr_decoder(counts, hidden_size=32, num_layers=1, num_heads=2, ffn_size=64)
