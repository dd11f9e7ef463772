"""Losses: registered ones (``LOSSES``) that heads take by name, and the set-prediction and
attribute losses of the detection head.

============================ ================================================================
module                       what
============================ ================================================================
``classification``           ``cross_entropy``, ``soft_bce`` (VQA soft scores)
``set_criterion``            DETR's Hungarian-matched class / L1 / GIoU losses
``attribute``                BUTD's attribute cross-entropy of matched boxes
``contrastive``              ``contrastive``: image-text InfoNCE across ranks (CLIP, FLAVA)
``distillation``             ``distillation``: teacher-logit KD, ViT-BERT Eq. 7
============================ ================================================================
"""
from unimm.losses import classification  # noqa: F401  (losses: cross_entropy, soft_bce)
from unimm.losses import contrastive  # noqa: F401  (losses: contrastive)
from unimm.losses import distillation  # noqa: F401  (losses: distillation, ViT-BERT Eq. 7)
