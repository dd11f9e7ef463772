"""Encoders of one modality: an image or a token sequence -> an ``EncodedSequence``."""
from unimm.models.encoders import detr_image_encoder  # noqa: F401  (encoders: detr_image_encoder)
from unimm.models.encoders import modality_tokenizers, shared_transformer  # noqa: F401  (image_tokenizer, text_tokenizer, shared_transformer)
from unimm.models.encoders import hf_text_encoder  # noqa: F401  (encoders: hf_text_encoder)
from unimm.models.encoders import vision_transformers  # noqa: F401  (clip_vit_encoder, vit_encoder, swin_encoder, cait_encoder, volo_encoder, beit_encoder)
from unimm.models.encoders import patch_codes  # noqa: F401  (random_projection_codes)
