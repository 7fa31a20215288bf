"""Synthetic scenes: one coloured shape on a plain background, with a caption.

64x64 RGB drawn 4x supersampled with PIL and box-downsampled (anti-aliased edges); 8 colours with
±12 RGB jitter; shapes circle / square / triangle, half-size 0.14–0.30 of the image, squares and
triangles rotated ±15°. 8 of the 168 (fg, shape, bg) triples are held out of transformer training.
"""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
COLOURS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 210), "yellow": (235, 215, 50),
    "purple": (140, 60, 170), "orange": (240, 140, 30), "white": (245, 245, 245), "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle")
TRIPLES = [(fg, s, bg) for fg in COLOURS for s in SHAPES for bg in COLOURS if fg != bg]
HELD_OUT = [
    ("red", "triangle", "white"), ("green", "circle", "black"), ("blue", "square", "yellow"),
    ("yellow", "triangle", "purple"), ("purple", "circle", "orange"), ("orange", "square", "blue"),
    ("white", "circle", "red"), ("black", "triangle", "green"),
]
TRAIN_TRIPLES = [t for t in TRIPLES if t not in HELD_OUT]


def caption(fg: str, shape: str, bg: str) -> str:
    return f"a {fg} {shape} on a {bg} background"


def corpus() -> list[str]:
    return [caption(*t) for t in TRIPLES]


def _jitter(rgb, rng: random.Random) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-12, 12))) for c in rgb)


def shape_points(shape: str, cx: float, cy: float, r: float, angle_deg: float) -> list[tuple[float, float]]:
    if shape == "square":
        base = [(-r, -r), (r, -r), (r, r), (-r, r)]
    elif shape == "triangle":
        base = [(r * math.cos(a), r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    else:
        raise ValueError(shape)
    a = math.radians(angle_deg)
    return [(cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)) for x, y in base]


def render(fg: str, shape: str, bg: str, rng: random.Random, size: int = SIZE,
           colours: dict[str, tuple[int, int, int]] = COLOURS) -> np.ndarray:
    """One scene as uint8 (size, size, 3); ``colours``: the palette (a LoRA teaching a new colour
    passes an extended one)."""
    ss = 4
    big = size * ss
    img = Image.new("RGB", (big, big), _jitter(colours[bg], rng))
    draw = ImageDraw.Draw(img)
    r = rng.uniform(0.14, 0.30) * size
    cx = rng.uniform(r, size - r)
    cy = rng.uniform(r, size - r)
    colour = _jitter(colours[fg], rng)
    if shape == "circle":
        draw.ellipse([(cx - r) * ss, (cy - r) * ss, (cx + r) * ss, (cy + r) * ss], fill=colour)
    else:
        pts = shape_points(shape, cx * ss, cy * ss, r * ss, rng.uniform(-15, 15))
        draw.polygon(pts, fill=colour)
    return np.asarray(img.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


def sample(rng: random.Random, triples=TRAIN_TRIPLES) -> tuple[np.ndarray, str]:
    fg, shape, bg = rng.choice(triples)
    return render(fg, shape, bg, rng), caption(fg, shape, bg)


def batch(rng: random.Random, n: int, triples=TRAIN_TRIPLES) -> tuple[np.ndarray, list[str]]:
    items = [sample(rng, triples) for _ in range(n)]
    return np.stack([i for i, _ in items]), [c for _, c in items]
