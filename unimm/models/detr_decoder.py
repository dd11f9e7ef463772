"""UniT's domain-agnostic decoder (Sec. 3.3): DETR's transformer decoder over the encoded
memory, driven by a learned query embedding per dataset (Eq. 4)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.models.dataset_info import check_dataset_name, guess_task
from unimm.models.encoded_sequence import EncodedSequence
from unimm.modules.transformer_decoder import TransformerDecoder
from unimm.registry import DECODERS


class DetrDecoder(nn.Module):
    """``{h^{dec,l}} = D(h^enc, q^task)`` (Eq. 4).

    Args:
        num_queries: dataset name -> query count ``q``; each dataset gets its own
            ``nn.Embedding(q, D)`` (unit-normal init, as DETR's ``query_embed``).
        hidden_size: width ``d_t^d`` (paper: 768).
        num_layers: layers ``N_d`` (paper: 6).
        num_heads: attention heads (paper: 8).
        ffn_size: feed-forward width (paper: 2048).
        dropout: dropout rate (paper: 0.1).
    """

    def __init__(self, num_queries: Mapping[str, int], hidden_size: int = 768, num_layers: int = 6,
                 num_heads: int = 8, ffn_size: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        self.sizes = dict(hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                          ffn_size=ffn_size, dropout=dropout)
        self.transformer = TransformerDecoder(hidden_size, num_layers, num_heads, ffn_size, dropout)
        self.queries = nn.ModuleDict()
        for name, count in num_queries.items():
            self.set_num_queries(name, count)

    @property
    def hidden_size(self) -> int:
        return self.transformer.hidden_size

    def num_queries(self) -> dict[str, int]:
        return {name: int(emb.num_embeddings) for name, emb in self.queries.items()}

    def set_num_queries(self, name: str, count: int) -> None:
        """Give dataset ``name`` a fresh query embedding of ``count`` queries."""
        check_dataset_name(name)
        if count < 1:
            raise ConfigError(f"num_queries of dataset '{name}' must be at least 1, got {count}")
        self.queries[name] = nn.Embedding(count, self.hidden_size)

    def replicate(self, names: Iterable[str]) -> DetrDecoder:
        """A new, independently initialised decoder of the same sizes for datasets ``names``.

        Used for separate (per-task) decoders, ``D_t^sep`` of Sec. 3.3.
        """
        counts = self.num_queries()
        return DetrDecoder({name: counts[name] for name in names}, **self.sizes)

    def forward(self, memory: EncodedSequence, dataset_name: str) -> Tensor:
        """Decode the dataset's queries over the memory.

        Args:
            memory: hidden ``[B, S, D]``, padding_mask ``[B, S]``, pos ``[B, S, D]``, already
                at the decoder width ``D``.
            dataset_name: selects the query embedding ``q^task``.

        Returns:
            ``[L, B, Q, D]``: hidden states of every decoder layer, bottom to top.
        """
        if dataset_name not in self.queries:
            raise KeyError(f"the decoder has no queries for dataset '{dataset_name}' "
                           f"(it has: {', '.join(self.queries) or 'none'})")
        batch = memory.hidden.shape[0]
        queries = self.queries[dataset_name].weight  # [Q, D]
        query_pos = queries[None].expand(batch, -1, -1).to(memory.hidden.dtype)  # [B, Q, D]
        return self.transformer(query_pos, memory.hidden, memory.padding_mask, memory.pos)


@DECODERS.register()
def detr_decoder(
    dataset_info: dict[str, dict[str, Any]] | None = None,
    hidden_size: int = 768,
    num_layers: int = 6,
    num_heads: int = 8,
    ffn_size: int = 2048,
    dropout: float = 0.1,
    num_queries: dict[str, int] | None = None,
    detection_queries: int = 100,
    other_queries: int = 25,
) -> DetrDecoder:
    """DETR-style post-norm decoder with per-dataset learned queries (UniT Sec. 3.3).

    Args:
        dataset_info: per dataset, its ``info()``; every dataset gets queries. Passed at run
            time by the model builder.
        hidden_size, num_layers, num_heads, ffn_size, dropout: decoder sizes (paper Table
            A.1: 768 / 6 / 8 / 2048 / 0.1).
        num_queries: per-dataset query counts overriding the defaults below.
        detection_queries: queries of detection datasets (paper: 100, as DETR).
        other_queries: queries of every other dataset (paper: 25; Table C.1 tries 1 and 100).
    """
    overrides = dict(num_queries or {})
    names = list(dataset_info or {}) + [n for n in overrides if n not in (dataset_info or {})]
    if not names:
        raise ConfigError("detr_decoder needs dataset_info or num_queries to know its datasets; "
                          "build it inside a model")
    counts = {}
    for name in names:
        default = detection_queries if guess_task((dataset_info or {}).get(name, {})) == "detection" else other_queries
        counts[name] = int(overrides.get(name, default))
    return DetrDecoder(counts, hidden_size, num_layers, num_heads, ffn_size, dropout)
