"""Registered models, encoders, decoders and heads; each module below registers its own parts."""
from unimm.models import attribute_head  # noqa: F401  (heads: attribute_head)
from unimm.models import bert_text_encoder  # noqa: F401  (encoders: bert_text_encoder)
from unimm.models import detection_head  # noqa: F401  (heads: detection_head)
from unimm.models import detr_decoder  # noqa: F401  (decoders: detr_decoder)
from unimm.models import detr_image_encoder  # noqa: F401  (encoders: detr_image_encoder)
from unimm.models import mlp_classifier_head  # noqa: F401  (heads: mlp_classifier_head)
from unimm.models import unit  # noqa: F401  (models: unit)
from unimm.models import unit_presets  # noqa: F401  (models: unit_paper, unit_tiny)
