"""``lossless``: computed from the matrix for the model's family on this host (no torch import)."""

from __future__ import annotations

from typing import Any

from omni.sdk import Stage, Support


def expand(registry: Any, family: str, env: Any) -> tuple[dict[str, Any], list[str]]:
    """Lossless, supported, available; not offloads, not compile; at most one per exclusive group."""
    from omni.sdk import matrix

    m = matrix(registry, env)
    names: list[str] = []
    groups: set[str] = set()
    for name in m.optimization_names:
        spec = registry.optimization(name).spec
        if not spec.lossless or spec.places_pipeline or spec.stage is Stage.COMPILE:
            continue
        if m.cell(family, name).status is not Support.SUPPORTED:
            continue
        if spec.exclusive_group and spec.exclusive_group in groups:
            continue
        if spec.exclusive_group:
            groups.add(spec.exclusive_group)
        names.append(name)
    return {}, names
