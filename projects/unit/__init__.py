"""UniT (Hu & Singh, 2021) as a unimm plugin: its model, presets, task wiring and backbone stage.

The configs of this folder name it in ``env.user_dir``; importing it registers:

- models ``unit`` (parts written out), ``unit_paper``, ``unit_small`` and ``unit_tiny``
  (presets), ``backbone_classifier`` and ``cell_classifier`` (backbone pretraining stages);
- encoders ``unit_text_encoder`` (BERT with task tokens);
- metrics ``cell_accuracy`` (of the cell classifier stage).

The image encoder, decoder and heads it composes are unimm's (``detr_image_encoder``,
``detr_decoder``, ``detection_head``, ``mlp_classifier_head``).
"""
from . import backbone_stage, cell_accuracy, model, presets, text_encoder  # noqa: F401  (register the parts)
