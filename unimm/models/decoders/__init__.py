"""Decoders: learned queries attending over an encoded memory."""
from unimm.models.decoders import detr_decoder  # noqa: F401  (decoders: detr_decoder)
