"""DETR's transformer decoder over an encoded memory, with named sets of learned queries: one set
is DETR's object queries; one per dataset is UniT's domain-agnostic decoder (Sec. 3.3, Eq. 4)."""
from __future__ import annotations

from typing import Annotated, Mapping

from torch import Tensor, nn

from unimm.config.errors import ConfigError
from unimm.config.refs import Range
from unimm.models.encoded_sequence import EncodedSequence
from unimm.modules.keys import check_module_key
from unimm.modules.transformer_decoder import TransformerDecoder
from unimm.registry import DECODERS


class DetrDecoder(nn.Module):
    """``{h^{dec,l}} = D(h^enc, q^task)`` (Eq. 4).

    Args:
        num_queries: query set name (a dataset) -> query count ``q``; each set is its own
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
        self.transformer = TransformerDecoder(hidden_size, num_layers, num_heads, ffn_size, dropout)
        self.queries = nn.ModuleDict()
        for name, count in num_queries.items():
            check_module_key(name, "query set")
            if count < 1:
                raise ConfigError(f"{count} queries: give at least 1", key=f"num_queries.{name}")
            self.queries[name] = nn.Embedding(count, hidden_size)

    @property
    def hidden_size(self) -> int:
        return self.transformer.hidden_size

    def num_queries(self) -> dict[str, int]:
        return {name: int(emb.num_embeddings) for name, emb in self.queries.items()}

    def forward(self, memory: EncodedSequence, dataset_name: str) -> Tensor:
        """Decode one query set over the memory.

        Args:
            memory: hidden ``[B, S, D]``, padding_mask ``[B, S]``, pos ``[B, S, D]``, already
                at the decoder width ``D``.
            dataset_name: selects the query set ``q^task``.

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
    num_queries: dict[str, Annotated[int, Range(ge=1)]],
    hidden_size: int = 768,
    num_layers: int = 6,
    num_heads: int = 8,
    ffn_size: int = 2048,
    dropout: float = 0.1,
) -> DetrDecoder:
    """DETR-style post-norm decoder with named sets of learned queries (UniT Sec. 3.3).

    Args:
        num_queries: query set name -> count; a model with per-dataset queries (UniT) passes
            one set per dataset (paper: 100 for detection as DETR, 25 for the other tasks).
        hidden_size, num_layers, num_heads, ffn_size, dropout: decoder sizes (paper Table
            A.1: 768 / 6 / 8 / 2048 / 0.1).
    """
    if not num_queries:
        raise ConfigError("no query sets; give at least one, e.g. {detections: 100}", key="num_queries")
    return DetrDecoder(num_queries, hidden_size, num_layers, num_heads, ffn_size, dropout)
