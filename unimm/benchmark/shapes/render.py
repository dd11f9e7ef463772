"""Draw scenes into pixels and encode them deterministically (PNG or JPEG bytes).

Backgrounds are computed with numpy at the picture's size; shapes are drawn at ``SUPERSAMPLE``
times that size and box-filtered down, which gives anti-aliased edges. Pixel noise is added last,
over shapes and background alike. The same scene always gives the same bytes: no metadata,
fixed encoder settings.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

from unimm.benchmark.shapes.world import Background, Scene

SUPERSAMPLE = 4
JPEG_QUALITY = 92


def render_background(background: Background, width: int, height: int) -> np.ndarray:
    """The background pattern as a float array ``[height x width x 3]`` in 0..255."""
    colour_a = np.array(background.colour_a, dtype=np.float64)
    colour_b = np.array(background.colour_b, dtype=np.float64)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    along = xs * math.cos(background.angle) + ys * math.sin(background.angle)  # distance along the pattern direction
    period = background.period
    if background.kind == "plain":
        weight = np.zeros((height, width))
    elif background.kind == "gradient":
        weight = (along - along.min()) / max(along.max() - along.min(), 1e-6)
    elif background.kind == "noise":
        rng = np.random.default_rng(background.texture_seed)
        coarse = Image.fromarray((rng.random((4, 4)) * 255).astype(np.uint8), mode="L")
        weight = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float64) / 255.0
    elif background.kind == "stripes":
        weight = (np.sin(2 * math.pi * along / (2 * period)) > 0).astype(np.float64)
    elif background.kind == "checker":
        weight = ((xs // period + ys // period) % 2).astype(np.float64)
    elif background.kind == "dots":
        dx, dy = xs % period - period / 2, ys % period - period / 2
        weight = (dx * dx + dy * dy < (period / 4) ** 2).astype(np.float64)
    else:
        raise ValueError(f"unknown background kind {background.kind!r}")
    return colour_a * (1.0 - weight[..., None]) + colour_b * weight[..., None]


def render_scene(scene: Scene) -> Image.Image:
    """The scene as an RGB ``PIL.Image`` of ``scene.width x scene.height`` pixels."""
    base = np.clip(render_background(scene.background, scene.width, scene.height), 0, 255).astype(np.uint8)
    big = Image.fromarray(base, mode="RGB").resize(
        (scene.width * SUPERSAMPLE, scene.height * SUPERSAMPLE), Image.Resampling.NEAREST
    )
    draw = ImageDraw.Draw(big)
    for obj in scene.objects:
        draw.polygon([(x * SUPERSAMPLE, y * SUPERSAMPLE) for x, y in obj.polygon()], fill=obj.rgb)
    pixels = np.asarray(big.reduce(SUPERSAMPLE), dtype=np.float64)
    if scene.background.noise_sigma > 0:
        rng = np.random.default_rng(scene.background.texture_seed + 1)
        pixels = pixels + rng.normal(0.0, scene.background.noise_sigma, size=pixels.shape)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="RGB")


def encode(image: Image.Image, image_format: str) -> bytes:
    """``image`` as PNG or JPEG bytes with fixed settings (no metadata, so bytes are reproducible).

    Args:
        image: an RGB image.
        image_format: "png" or "jpg".
    """
    buffer = io.BytesIO()
    if image_format == "png":
        image.save(buffer, format="PNG", compress_level=6)
    elif image_format == "jpg":
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    else:
        raise ValueError(f"unknown image format {image_format!r}; use 'png' or 'jpg'")
    return buffer.getvalue()
