"""Model parts by role; each module registers its own.

=================== ================================================ ===========================
folder              what                                             registered
=================== ================================================ ===========================
``encoders``        one modality -> an ``EncodedSequence``           ``detr_image_encoder``,
                    (ViT-BERT / MoMo: modality tokenizers and a      ``image_tokenizer``,
                    shared pre-LN encoder over their tokens)         ``text_tokenizer``,
                                                                     ``shared_transformer``,
                    (METER: timm vision transformers, BERT /         ``clip_vit_encoder``,
                    RoBERTa)                                         ``vit_encoder``, ``swin_encoder``,
                                                                     ``hf_text_encoder``
``fusion``          image and text sequences -> a joint one          ``co_attention``,
                                                                     ``merged_attention``
``decoders``        queries over an encoded memory (DETR / UniT);    ``detr_decoder``,
                    a token sequence over vision and text streams    ``dual_cross_attention_decoder``
                    (METER's encoder-decoder variant)
``heads``           outputs and losses of one task                   ``detection_head``,
                                                                     ``attribute_head``,
                                                                     ``mlp_classifier_head``,
                                                                     ``mlm_head``, ``itm_head``,
                                                                     ``vl_classifier_head``
=================== ================================================ ===========================

Whole models (a paper's composition of these parts) are registered by their projects, e.g.
``projects/unit`` registers ``unit``. Builders take explicit arguments (counts, names, sizes);
a model's builder computes them once from ``dataset_info`` and passes them down.
"""
from unimm.models import decoders, encoders, fusion, heads  # noqa: F401  (each registers its parts)
