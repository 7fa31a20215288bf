"""Prompt-adherence checker for shapes images: background colour, foreground colour, shape.

* background = the majority palette colour of the 2-px border;
* foreground mask = pixels more than 60 RGB away from the background palette colour;
* foreground colour = palette vote over the 60 % of mask pixels farthest from the background;
* shape = the best IoU between the mask and circle / square / triangle templates placed at the
  mask centroid with the mask's area, rotations -15..15°.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from omni_model_shapes.data import COLOURS, SHAPES, shape_points

_NAMES = list(COLOURS)
_PALETTE = np.array([COLOURS[n] for n in _NAMES], dtype=np.float64)
_CAPTION = re.compile(r"a (\w+) (\w+) on a (\w+) background")


@dataclass(frozen=True)
class Verdict:
    fg: str | None
    shape: str | None
    bg: str
    iou: float


def _nearest(pixels: np.ndarray, palette: np.ndarray = _PALETTE) -> np.ndarray:
    d = ((pixels[:, None, :] - palette[None]) ** 2).sum(-1)
    return d.argmin(1)


def _template(shape: str, size: int, cx: float, cy: float, area: float, angle: float) -> np.ndarray:
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    if shape == "circle":
        r = math.sqrt(area / math.pi)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
    elif shape == "square":
        r = math.sqrt(area) / 2
        draw.polygon(shape_points("square", cx, cy, r, angle), fill=1)
    else:  # equilateral triangle inscribed in radius r: area = 3*sqrt(3)/4 * r^2
        r = math.sqrt(area * 4 / (3 * math.sqrt(3)))
        draw.polygon(shape_points("triangle", cx, cy, r, angle), fill=1)
    return np.asarray(img, dtype=bool)


def check(image: np.ndarray, colours: dict[str, tuple[int, int, int]] | None = None) -> Verdict:
    """``image``: (H, W, 3) floats in [0, 1] or uint8. ``colours``: the palette (name -> RGB), default
    the training colours (a LoRA that teaches a new colour passes the extended palette)."""
    names = _NAMES if colours is None else list(colours)
    palette = _PALETTE if colours is None else np.array([colours[n] for n in names], dtype=np.float64)
    img = np.asarray(image, dtype=np.float64)
    if img.max() <= 1.0:
        img = img * 255.0
    h, w, _ = img.shape
    border = np.concatenate([img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3), img[:, :2].reshape(-1, 3),
                             img[:, -2:].reshape(-1, 3)])
    bg_idx = np.bincount(_nearest(border, palette), minlength=len(names)).argmax()
    bg_rgb = palette[bg_idx]
    dist = np.sqrt(((img - bg_rgb) ** 2).sum(-1))
    mask = dist > 60
    if mask.sum() < 4:
        return Verdict(None, None, names[bg_idx], 0.0)
    pix = img[mask]
    pdist = dist[mask]
    core = pix[pdist >= np.quantile(pdist, 0.4)]
    votes = np.bincount(_nearest(core, palette), minlength=len(names))
    votes[bg_idx] = -1
    fg = names[int(votes.argmax())]
    ys, xs = np.nonzero(mask)
    cy, cx, area = ys.mean() + 0.5, xs.mean() + 0.5, float(mask.sum())
    best, best_iou = None, -1.0
    for shape in SHAPES:
        angles = (0,) if shape == "circle" else range(-15, 16, 5)
        for angle in angles:
            t = _template(shape, w, cx, cy, area, angle)
            iou = (t & mask).sum() / max((t | mask).sum(), 1)
            if iou > best_iou:
                best, best_iou = shape, float(iou)
    return Verdict(fg, best, names[bg_idx], best_iou)


def parse(prompt: str) -> tuple[str, str, str]:
    m = _CAPTION.fullmatch(prompt.strip().lower())
    if not m:
        raise ValueError(f"not a shapes caption: {prompt!r}")
    return m.group(1), m.group(2), m.group(3)


def score(images, prompts, colours: dict[str, tuple[int, int, int]] | None = None) -> dict[str, float]:
    """Accuracy of fg colour, bg colour, shape and all three over paired images/prompts (``colours``:
    the palette, see :func:`check`)."""
    fg = bg = sh = allc = 0
    ious = []
    for image, prompt in zip(images, prompts):
        want = parse(prompt)
        v = check(image, colours)
        ok = (v.fg == want[0], v.shape == want[1], v.bg == want[2])
        fg += ok[0]
        sh += ok[1]
        bg += ok[2]
        allc += all(ok)
        ious.append(v.iou)
    n = max(len(prompts), 1)
    return {"n": len(prompts), "fg": fg / n, "bg": bg / n, "shape": sh / n, "all": allc / n,
            "mean_iou": float(np.mean(ious)) if ious else 0.0}


def adherence(images, prompts) -> float:
    """The fraction of images whose foreground colour, shape and background all match their caption
    (``ModelSpec.adherence``: ``omni tune --min-adherence`` uses it as a quality floor)."""
    return score(images, prompts)["all"]
