"""MoMo (Chada, Zheng, Natarajan, "MoMo: A shared encoder Model for text, image and multi-Modal
representations") as a unimm plugin.

The configs of this folder name it in ``env.user_dir``; importing it registers the models ``momo``
(parts written out), ``momo_base``, ``momo_large``, ``momo_small`` and ``momo_tiny`` (presets). The
parts it composes are unimm's: ``image_tokenizer`` (sin-cos positions), ``text_tokenizer``,
``shared_transformer``, the MAE decoder, the masking of ``unimm.modules.token_masking``, the
``contrastive`` loss, the hard-negative sampler and the ``accumulate`` step strategy (Sec. 3.5).
"""
from . import model, presets  # noqa: F401  (register the parts)
