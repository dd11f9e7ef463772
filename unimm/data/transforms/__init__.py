"""Image transforms: ``transform(image, target=None, generator=None) -> (image, target)``."""
from unimm.data.transforms import geometric, photometric, pipeline, presets  # noqa: F401  (registers)
from unimm.data.transforms.functional import Target
from unimm.data.transforms.photometric import IMAGENET_MEAN, IMAGENET_STD, NormalizeImage
from unimm.data.transforms.pipeline import ImageTransform, Pipeline

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageTransform", "NormalizeImage", "Pipeline", "Target"]
