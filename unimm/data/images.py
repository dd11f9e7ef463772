"""Opening image files, and checking up front that the files a dataset names exist."""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
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


class PixelCache:
    """Pictures after the fixed (random-free) steps of their transform, kept in memory, bounded in bytes.

    The key is the file (its path, size and modification time, so a changed file is read again) and
    the transform, so two datasets with different resizes never share an entry; a target given with
    the picture (detection boxes) is kept beside it, a copy handed out each time. When the bound
    would be passed, the least recently used pictures go first.

    Args:
        max_bytes: the bound on the kept pixels (0: keep nothing).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self.hits = self.misses = 0
        self._entries: OrderedDict[tuple, tuple[Image.Image, Any, Any]] = OrderedDict()

    def get(self, path: str | Path, context: str, fixed: Callable[..., tuple[Any, Any]],
            target: Any = None) -> tuple[Image.Image, Any]:
        """``fixed(load_image(path), target)``, from memory when it was computed before."""
        try:
            stat = os.stat(path)
        except OSError:
            return fixed(load_image(path, context), target)  # load_image names the problem
        key = (str(path), stat.st_size, stat.st_mtime_ns, id(fixed), fingerprint(target))
        entry = self._entries.get(key)
        if entry is not None and entry[2] is fixed:  # the same transform object, not one at a reused address
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0], copy_target(entry[1])
        self.misses += 1
        image, out = fixed(load_image(path, context), target)
        size = image.width * image.height * len(image.getbands()) if isinstance(image, Image.Image) else 0
        if 0 < size <= self.max_bytes:
            self._entries[key] = (image, copy_target(out), fixed)
            self.used += size
            while self.used > self.max_bytes:
                _, (old, _, _) = self._entries.popitem(last=False)
                self.used -= old.width * old.height * len(old.getbands())
        return image, out

    def clear(self) -> None:
        self._entries.clear()
        self.used = 0


def fingerprint(target: Any) -> Any:
    """A hashable summary of a target, so a picture with other annotations is another entry."""
    if target is None:
        return None
    return tuple(sorted((key, tuple(value.flatten().tolist()) if isinstance(value, torch.Tensor) else repr(value))
                        for key, value in target.items()))


def copy_target(target: Any) -> Any:
    """A copy that the steps after the cache may change without touching the kept one."""
    if target is None:
        return None
    return {key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in target.items()}


# 1 GiB of pixels by default (the main job's pictures at 128 pixels take 524 MB, 9,950 of them);
# UNIMM_PIXEL_CACHE_MB sets another bound, 0 turns the cache off.
PIXEL_CACHE = PixelCache(int(float(os.environ.get("UNIMM_PIXEL_CACHE_MB", "1024")) * 2**20))
