"""What a family tells MagCache (``FamilySpec.extras["mag_cache"]``) and the trait it gains. Light:
runs when plugins load (no torch, no diffusers).

``extras["mag_cache"] = {"ratios": "FLUX_MAG_RATIOS"}`` (the name of a constant in
``diffusers.hooks.mag_cache``) or ``{"ratios": [1.0, 1.02, ...]}`` (the magnitude ratios of one
uncached run, as ``mag_cache.calibrate`` reports them). The impl reads them from ``ctx.family.extras``;
``mag_cache.mag_ratios`` overrides them per run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAG_TRAITS = {"mag_cache:ratios": "the family declares MagCache magnitude ratios (extras['mag_cache'].ratios)"}


def mag_cache_traits(family: Any, data: Mapping[str, Any]) -> set[str]:
    """Validate ``extras["mag_cache"]`` (ValueError with the reason) and return the trait it gives."""
    if not data:
        return set()
    unknown = sorted(set(data) - {"ratios"})
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} (known: ratios)")
    ratios = data.get("ratios")
    if isinstance(ratios, str):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ratios):
            raise ValueError(f"ratios {ratios!r} must name a constant of diffusers.hooks.mag_cache")
    elif isinstance(ratios, (list, tuple)):
        if len(ratios) < 2 or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0
                                      for r in ratios):
            raise ValueError("ratios must hold at least two positive numbers")
    else:
        raise ValueError("ratios must be the name of a constant of diffusers.hooks.mag_cache or a list of numbers")
    return {"mag_cache:ratios"}
