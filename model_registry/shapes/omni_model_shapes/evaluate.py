"""Adherence evaluation of the shapes model, optionally under omni optimizations."""

from __future__ import annotations

import random
import time
from typing import Any

from omni_model_shapes.data import HELD_OUT, TRAIN_TRIPLES, caption


def eval_prompts(n_seen: int = 32, held_out_seeds: int = 2) -> list[tuple[str, int, bool]]:
    """(prompt, seed, held_out): ``n_seen`` training triples + every held-out triple x seeds (default 48)."""
    rng = random.Random(7)
    seen = [(caption(*t), i, False) for i, t in enumerate(rng.sample(TRAIN_TRIPLES, n_seen))]
    held = [(caption(*t), 100 + s, True) for t in HELD_OUT for s in range(held_out_seeds)]
    return seen + held


def adherence(optimize: list[str] | None = None, sets: dict[str, Any] | None = None, prompts=None,
              steps: int | None = None, device: str | None = None, registry=None) -> dict[str, Any]:
    """Generate every prompt with the shapes model (optimizations applied once) and score it."""
    import omni

    from omni_model_shapes.checker import score

    prompts = prompts or eval_prompts()
    engine = omni.Engine("shapes", optimize=list(optimize or []), sets=sets or {}, registry=registry, device=device,
                         prompt_cache=False)
    images, computed, reused, seconds = [], 0, 0, 0.0
    try:
        for prompt, seed, _ in prompts:
            t0 = time.perf_counter()
            result = engine.generate(prompt, seed=seed, num_inference_steps=steps)
            seconds += time.perf_counter() - t0
            images.append(result.images[0])
            for cache in result.report.cache_hits:
                computed += cache["computed"]
                reused += cache["reused"]
            used_steps = result.report.generation["num_inference_steps"]
    finally:
        engine.close()
    all_scores = score(images, [p for p, _, _ in prompts])
    held = [i for i, (_, _, h) in enumerate(prompts) if h]
    held_scores = score([images[i] for i in held], [prompts[i][0] for i in held])
    applied = [r.name for r in engine.load_report.config_resolved if r.status == "applied"]
    return {"scores": all_scores, "held_out": held_scores, "images": images, "seconds": seconds,
            "applied": applied, "cache_computed": computed, "cache_reused": reused, "steps": used_steps}
