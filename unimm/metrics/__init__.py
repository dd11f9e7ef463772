"""Registered metrics; each module registers its own."""
from unimm.metrics import accuracy  # noqa: F401
from unimm.metrics import cell_accuracy  # noqa: F401
from unimm.metrics import coco_map  # noqa: F401
from unimm.metrics import vqa_accuracy  # noqa: F401
