import torch

from unimm.models.detr_decoder import detr_decoder
from unimm.models.encoded_sequence import EncodedSequence
from unimm.models.unit_presets import unit_tiny


def test_default_and_configured_query_counts(dataset_info):
    decoder = detr_decoder(dataset_info, hidden_size=32, num_layers=2, num_heads=2, ffn_size=64,
                           num_queries={"snli_ve": 1})
    assert decoder.num_queries() == {"coco": 100, "vg": 100, "vqa2": 25, "snli_ve": 1, "sst2": 25}
    memory = EncodedSequence(torch.randn(3, 9, 32), torch.zeros(3, 9, dtype=torch.bool), torch.randn(3, 9, 32))
    assert decoder(memory, "vg").shape == (2, 3, 100, 32)
    assert decoder(memory, "snli_ve").shape == (2, 3, 1, 32)


def test_shared_versus_separate_decoders(dataset_info):
    shared = unit_tiny(dataset_info, shared_decoder=True)
    first = shared.decoder_for("coco")
    assert all(shared.decoder_for(name) is first for name in dataset_info)
    separate = unit_tiny(dataset_info, shared_decoder=False)
    decoders = [separate.decoder_for(name) for name in dataset_info]
    assert len({id(d) for d in decoders}) == len(dataset_info)
    param_ids = [{id(p) for p in d.parameters()} for d in decoders]
    assert all(not (a & b) for i, a in enumerate(param_ids) for b in param_ids[i + 1:])
    # each separate decoder holds only its own dataset's queries
    assert [list(d.num_queries()) for d in decoders] == [[name] for name in dataset_info]
    # separate decoders are independently initialised
    w = [d.transformer.layers[0].linear1.weight for d in decoders]
    assert not torch.equal(w[0], w[1])
    per_layer = sum(p.numel() for p in first.transformer.parameters())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(separate) - count(shared) == (len(dataset_info) - 1) * per_layer


def test_task_query_override(dataset_info):
    model = unit_tiny(dataset_info, tasks={"snli_ve": {"num_queries": 1}})
    assert model.decoder.num_queries()["snli_ve"] == 1
