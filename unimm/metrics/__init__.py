"""Registered metrics; each module registers its own. ``coco_eval`` is the torch-free COCOeval path
that the ``coco_map`` metric and the benchmark's baselines share."""
from unimm.metrics import accuracy  # noqa: F401
from unimm.metrics import coco_map  # noqa: F401
from unimm.metrics import glue_scores  # noqa: F401
from unimm.metrics import retrieval  # noqa: F401
from unimm.metrics import vqa_accuracy  # noqa: F401
