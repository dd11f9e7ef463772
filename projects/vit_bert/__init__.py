"""ViT-BERT (Li et al., "Towards a Unified Foundation Model") as a unimm plugin.

The configs of this folder name it in ``env.user_dir``; importing it registers the models
``vit_bert`` (parts written out), ``vit_bert_paper``, ``vit_bert_small`` and ``vit_bert_tiny``
(presets), and the teachers ``published_bert_teacher`` and ``published_vit_teacher`` (the published
post-LN BERT and ViT from local files). The parts it composes are unimm's: ``image_tokenizer``, ``text_tokenizer``,
``shared_transformer`` (encoders), the ``distillation`` loss, the ``masked_combine`` step strategy
and the ``iterative_gradient_mask`` optimizer hook.
"""
from . import model, presets, published_teachers  # noqa: F401  (register the parts)
