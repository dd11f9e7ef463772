"""Encoders of one modality: an image or a token sequence -> an ``EncodedSequence``."""
from unimm.models.encoders import detr_image_encoder  # noqa: F401  (encoders: detr_image_encoder)
