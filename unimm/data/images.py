"""Opening image files, and checking up front that the files a dataset names exist."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from PIL import Image

from unimm.config.errors import ConfigError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_LISTED = 20  # missing images named in one message; the rest are counted


def load_image(path: str | Path, context: str) -> Image.Image:
    """Open ``path`` as an RGB PIL image.

    Args:
        path: the image file.
        context: which record named it (shown when the file is missing or unreadable).
    """
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise ConfigError(
            f"image file not found: {path} (named by {context}); "
            "copy the dataset's images there or fix the dataset's image_dir") from None
    except OSError as err:
        raise ConfigError(f"cannot read image {path} (named by {context}): {err}") from err


def require_images(paths: Iterable[str | Path], dataset: str) -> None:
    """Raise one ``ConfigError`` naming the missing image files (the first 20 and a count)."""
    missing = [str(p) for p in dict.fromkeys(paths) if not Path(p).is_file()]
    if not missing:
        return
    problems = [f"missing image: {p}" for p in missing[:_LISTED]]
    if len(missing) > _LISTED:
        problems.append(f"... and {len(missing) - _LISTED} more missing images")
    where = f"the {dataset} images (copy them there, fix image_dir, or set check_images=false to skip this check)"
    raise ConfigError(problems, source=where)
