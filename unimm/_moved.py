"""Where moved modules and renamed parts went, so that old imports and names get a clear answer.

A module moved inside unimm still imports under its old name, with a ``DeprecationWarning``
naming the new one. A module that moved into a project (paper-specific code) raises an
``ImportError`` that says where it is now and how to load it. Renamed registered parts keep
building under their old name with a warning (``Registry.rename``).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

# old module -> new module, inside unimm
MOVED_IN_UNIMM = {
    "unimm.data.shapes": "unimm.benchmark.shapes",
    "unimm.models.detr_image_encoder": "unimm.models.encoders.detr_image_encoder",
    "unimm.models.detr_weights": "unimm.models.encoders.detr_weights",
    "unimm.models.detr_decoder": "unimm.models.decoders.detr_decoder",
    "unimm.models.detection_head": "unimm.models.heads.detection_head",
    "unimm.models.attribute_head": "unimm.models.heads.attribute_head",
    "unimm.models.mlp_classifier_head": "unimm.models.heads.mlp_classifier_head",
    "unimm.modules.set_criterion": "unimm.losses.set_criterion",
}
# old module -> where its code lives now, in a project (a plugin folder)
MOVED_TO_PROJECTS = {
    "unimm.models.unit": "projects/unit/model.py",
    "unimm.models.unit_presets": "projects/unit/presets.py",
    "unimm.models.dataset_info": "projects/unit/tasks.py",
    "unimm.models.bert_text_encoder": "projects/unit/text_encoder.py (registered as unit_text_encoder)",
    "unimm.models.backbone_classifier": "projects/unit/backbone_stage.py",
    "unimm.metrics.cell_accuracy": "projects/unit/cell_accuracy.py",
}
# kind -> old registered name -> (new name, what registers it)
RENAMED_PARTS = {
    "models": {"unit_bench": ("unit_small", "projects/unit")},
    "encoders": {"bert_text_encoder": ("unit_text_encoder", "projects/unit")},
}


def _moved_to(old: str) -> str | None:
    """The new module of ``old`` or of the moved package it lies in."""
    for prefix, new in MOVED_IN_UNIMM.items():
        if old == prefix or old.startswith(prefix + "."):
            return new + old[len(prefix):]
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(f"{spec.name} moved to {self.new}; import it from there (the old name will go)",
                      DeprecationWarning, stacklevel=3)
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        pass


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Answers imports of moved module names (see the tables above)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):  # type: ignore[no-untyped-def]
        if fullname in MOVED_TO_PROJECTS:
            raise ImportError(
                f"{fullname} is UniT's and moved out of unimm to {MOVED_TO_PROJECTS[fullname]}; it is a plugin "
                "folder: name it in env.user_dir (the UniT configs do), or import it as projects.unit.<module> "
                "from the repository root", name=fullname)
        new = _moved_to(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    """Put the finder in front of the import system once."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())


def register_renames() -> None:
    """Tell the registries about renamed parts."""
    from unimm.registry import REGISTRIES

    for kind, names in RENAMED_PARTS.items():
        for old, (new, where) in names.items():
            REGISTRIES[kind].rename(old, new, where)
