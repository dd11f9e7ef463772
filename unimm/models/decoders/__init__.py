"""Decoders: learned queries attending over an encoded memory (DETR), or a token sequence decoded over
encoded streams (METER's encoder-decoder variant)."""
from unimm.models.decoders import detr_decoder  # noqa: F401  (decoders: detr_decoder)
from unimm.models.decoders import dual_cross_attention_decoder  # noqa: F401  (decoders: dual_cross_attention_decoder)
