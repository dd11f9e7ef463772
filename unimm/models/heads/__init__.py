"""Heads: a task's outputs and losses from decoder (or encoder) states."""
from unimm.models.heads import attribute_head, detection_head, mlp_classifier_head  # noqa: F401
from unimm.models.heads import mlm_head  # noqa: F401
from unimm.models.heads import itm_head, vl_classifier_head  # noqa: F401
from unimm.models.heads import mim_head  # noqa: F401
