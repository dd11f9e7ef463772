"""METER (Dou et al., "An Empirical Study of Training End-to-End Vision-and-Language Transformers") as a
unimm plugin.

The configs of this folder name it in ``env.user_dir``; importing it registers the models ``meter``
(parts written out), ``meter_paper``, ``meter_small`` and ``meter_tiny`` (presets). The parts it
composes are unimm's: ``clip_vit_encoder`` / ``vit_encoder`` / ``swin_encoder`` / ``cait_encoder`` /
``volo_encoder`` / ``beit_encoder``, ``hf_text_encoder``, ``co_attention`` / ``merged_attention``,
``dual_cross_attention_decoder`` (the encoder-decoder variant), ``mlm_head``, ``itm_head``,
``vl_classifier_head``, and the ``image_text_pretraining`` dataset (MLM + ITM samples).
"""
from . import model, presets  # noqa: F401  (register the parts)
