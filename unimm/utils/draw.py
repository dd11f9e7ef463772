"""Pictures of detections: images in a grid, predicted and ground-truth boxes drawn on them.

Boxes are dicts in the COCO layout, ``bbox`` = ``[x, y, w, h]`` in pixels of the image they
are drawn on:

* a detection: ``{"bbox": [...], "label": str, "score": float}``, drawn thick in
  ``PREDICTION_COLOR`` with ``"<label> <score>"`` above it;
* a ground-truth box: ``{"bbox": [...]}``, drawn thin in ``GROUND_TRUTH_COLOR`` (other keys
  are ignored).

Only PIL is needed (its default font writes the labels).
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

from unimm.utils.fileio import atomic_write_bytes

PREDICTION_COLOR = (255, 64, 0)  # orange-red
GROUND_TRUTH_COLOR = (0, 200, 255)  # light blue
BACKGROUND_COLOR = (32, 32, 32)
TEXT_COLOR = (0, 0, 0)
PREDICTION_WIDTH = 2  # line width in pixels of the picture
GROUND_TRUTH_WIDTH = 1
CELL_SIZE = 320  # side of a grid cell in pixels
MARGIN = 4  # pixels free around an image inside its cell

Panel = tuple[Image.Image, Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]  # image, detections, gt


def fit_in_cell(width: int, height: int, cell_size: int, margin: int) -> tuple[float, int, int]:
    """Scale and offset placing a ``width x height`` image centred in a square cell.

    Returns:
        ``(scale, left, top)``: the image is resized by ``scale`` (up or down) to fit inside
        ``cell_size - 2 * margin`` pixels and pasted at ``(left, top)`` of its cell.
    """
    room = cell_size - 2 * margin
    scale = min(room / width, room / height)
    shown_w, shown_h = max(1, round(width * scale)), max(1, round(height * scale))
    return scale, (cell_size - shown_w) // 2, (cell_size - shown_h) // 2


def grid_shape(count: int, columns: int) -> tuple[int, int]:
    """``(columns, rows)`` of a grid of ``count`` cells at most ``columns`` wide."""
    cols = max(1, min(columns, count))
    return cols, max(1, math.ceil(count / cols))


def draw_detections(images: Sequence[Panel], path: str | os.PathLike, *, columns: int = 4,
                    cell_size: int = CELL_SIZE, margin: int = MARGIN) -> Path:
    """Draw images with their boxes in a grid and write it as a PNG, atomically.

    Each image is scaled to fit its ``cell_size`` square cell (centred, ``margin`` pixels
    around); the grid is ``min(columns, N)`` cells wide and ``ceil(N / columns)`` high, so the
    picture is ``cols * cell_size`` by ``rows * cell_size`` pixels.

    Args:
        images: per image ``(PIL image, detections, ground truth)``, boxes as the module
            describes, in pixels of that image.
        path: the PNG to write (its folder is created); a temporary file beside it is renamed
            over it, so a reader never sees half a picture.
        columns: the most cells in a row.
        cell_size: side of a cell in pixels.
        margin: pixels left free around an image inside its cell.

    Returns:
        ``path``.

    Raises:
        ValueError: no images, or a cell too small for its margin.
    """
    if not images:
        raise ValueError(f"draw_detections: no images to draw into {path}; pass at least one (image, "
                         "detections, ground truth)")
    if cell_size <= 2 * margin:
        raise ValueError(f"draw_detections: cell_size {cell_size} leaves no room inside a margin of {margin}; "
                         "raise cell_size or lower margin")
    cols, rows = grid_shape(len(images), columns)
    canvas = Image.new("RGB", (cols * cell_size, rows * cell_size), BACKGROUND_COLOR)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for index, (image, detections, ground_truth) in enumerate(images):
        image = image.convert("RGB")
        scale, left, top = fit_in_cell(image.width, image.height, cell_size, margin)
        shown = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        origin = ((index % cols) * cell_size + left, (index // cols) * cell_size + top)
        canvas.paste(image.resize(shown, Image.Resampling.BILINEAR), origin)
        clip = (origin[0], origin[1], origin[0] + shown[0] - 1, origin[1] + shown[1] - 1)
        for box in ground_truth:
            _rectangle(draw, box["bbox"], scale, origin, clip, GROUND_TRUTH_COLOR, GROUND_TRUTH_WIDTH)
        placed = [_rectangle(draw, box["bbox"], scale, origin, clip, PREDICTION_COLOR, PREDICTION_WIDTH)
                  for box in detections]
        for box, corners in zip(detections, placed):  # labels last: no box line crosses them
            if corners is not None:
                _label(draw, font, f"{box['label']} {float(box['score']):.2f}", corners, clip)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def _rectangle(draw: ImageDraw.ImageDraw, bbox: Sequence[float], scale: float, origin: tuple[int, int],
               clip: tuple[int, int, int, int], color: tuple[int, int, int],
               width: int) -> tuple[int, int, int, int] | None:
    """Outline ``bbox`` (x, y, w, h in image pixels) on the canvas, clipped to the image; its corners."""
    x, y, w, h = (float(v) for v in bbox)
    x0 = max(clip[0], min(clip[2], round(origin[0] + x * scale)))
    y0 = max(clip[1], min(clip[3], round(origin[1] + y * scale)))
    x1 = max(clip[0], min(clip[2], round(origin[0] + (x + w) * scale)))
    y1 = max(clip[1], min(clip[3], round(origin[1] + (y + h) * scale)))
    if x1 <= x0 or y1 <= y0:
        return None  # empty, or wholly outside the image
    draw.rectangle((x0, y0, x1, y1), outline=color, width=width)
    return x0, y0, x1, y1


def _label(draw: ImageDraw.ImageDraw, font: Any, text: str, corners: tuple[int, int, int, int],
           clip: tuple[int, int, int, int]) -> None:
    """``text`` on a box of the prediction colour above the box's top-left corner (inside when no room)."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    text_w, text_h = right - left + 2, bottom - top + 2
    x = min(corners[0], max(clip[0], clip[2] - text_w))
    y = corners[1] - text_h if corners[1] - text_h >= clip[1] else corners[1]
    draw.rectangle((x, y, x + text_w - 1, y + text_h - 1), fill=PREDICTION_COLOR)
    draw.text((x + 1 - left, y + 1 - top), text, fill=TEXT_COLOR, font=font)
