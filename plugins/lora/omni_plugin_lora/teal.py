"""What the shipped ``shapes-teal`` adapter teaches the ``shapes`` model, and how that is measured.

The shapes model knows eight colour words (``omni_model_shapes.data.COLOURS``). The adapter adds a
ninth, **teal** (RGB 20, 130, 130 — a colour the shapes VAE reproduces within about 25 RGB), as a
foreground colour: "a teal circle on a white background". Without the adapter the model has never
seen the word (both tokenizers spell it out in sub-word pieces). Three of the 24 teal triples are
held out of training to test composition. Adherence is scored with the shapes checker on the palette
extended by teal. Needs omni-model-shapes (imported when called).
"""

from __future__ import annotations

from typing import Any

TEAL = (20, 130, 130)
ADAPTER = "shapes-teal"
HELD_OUT = (("teal", "triangle", "white"), ("teal", "circle", "orange"), ("teal", "square", "purple"))


def palette() -> dict[str, tuple[int, int, int]]:
    from omni_model_shapes.data import COLOURS

    return {**COLOURS, "teal": TEAL}


def triples() -> list[tuple[str, str, str]]:
    """Every teal scene: teal foreground, each shape, each of the eight background colours."""
    from omni_model_shapes.data import COLOURS, SHAPES

    return [("teal", shape, bg) for shape in SHAPES for bg in COLOURS]


def train_triples() -> list[tuple[str, str, str]]:
    return [t for t in triples() if t not in HELD_OUT]


def prompts(seeds: int = 2) -> list[tuple[str, int, bool]]:
    """(prompt, seed, held_out) for every teal triple x ``seeds`` (48 by default)."""
    from omni_model_shapes.data import caption

    return [(caption(*t), 200 + s, t in HELD_OUT) for t in triples() for s in range(seeds)]


def score(images: Any, captions: list[str]) -> dict[str, float]:
    """The shapes checker's accuracies over the palette extended by teal."""
    from omni_model_shapes.checker import score as shapes_score

    return shapes_score(images, captions, palette())


def generate(engine: Any, items: list[tuple[str, int, bool]], options: dict[str, Any] | None = None) -> list[Any]:
    """One image per (prompt, seed) on a warm engine, with per-request ``options``."""
    return [engine.generate(prompt, seed=seed, options=dict(options or {})).images[0] for prompt, seed, _ in items]


def evaluate(engine: Any, items: list[tuple[str, int, bool]], options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Scores over all ``items`` and over the held-out ones; the images come back too."""
    images = generate(engine, items, options)
    captions = [p for p, _, _ in items]
    held = [i for i, (_, _, h) in enumerate(items) if h]
    out: dict[str, Any] = {"all": score(images, captions), "images": images}
    if held:
        out["held_out"] = score([images[i] for i in held], [captions[i] for i in held])
    return out
