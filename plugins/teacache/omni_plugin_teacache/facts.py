"""What a family tells TeaCache (``FamilySpec.extras["teacache"]``) and the traits it gains. Light:
runs when plugins load (no torch).

``extras["teacache"] = {"probe": "flux-norm1", "coefficients": (5 floats, highest power first),
"source": "where they come from"}``; a family may name only its ``probe`` and leave the coefficients
to ``omni calibrate teacache``. A calibration in the store gives the family the traits too (a fit on
random weights is then applied only to runs of its own model: see :mod:`.store`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omni_plugin_teacache import store

# the probe points of :mod:`.probes` (kept here so that reading declarations needs no torch)
PROBE_NAMES = ("flux-norm1", "wan-time-modulation", "ltx-norm1", "qwen-img-mod", "block0-input")
DEFAULT_PROBE = "block0-input"

TRAITS = {
    "teacache:coefficients": "TeaCache rescale coefficients: published by the family (extras['teacache']) or "
                             "fitted by omni calibrate teacache (a fit on random weights serves only its own model)",
    "teacache:probe": "the family names the tensor TeaCache compares between steps (extras['teacache'].probe)",
}
KEYS = ("probe", "coefficients", "source")


def check_coefficients(value: Any, where: str) -> tuple[float, ...]:
    """5 numbers (degree 4, highest power first), or ValueError naming ``where``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise ValueError(f"{where}: coefficients must be 5 numbers, not {value!r}")
    if len(value) != 5 or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in value):
        raise ValueError(f"{where}: coefficients must be 5 numbers (degree 4, highest power first)")
    return tuple(float(c) for c in value)


def check_probe(value: Any, where: str) -> str:
    if value not in PROBE_NAMES:
        raise ValueError(f"{where}: probe {value!r} is not one of {', '.join(PROBE_NAMES)}")
    return value


def family_traits(family: Any, data: Mapping[str, Any]) -> set[str]:
    """Validate ``extras["teacache"]`` (ValueError with the reason) and return the traits it gives."""
    traits = set()
    if data:
        unknown = sorted(set(data) - set(KEYS))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
        check_probe(data.get("probe"), "extras['teacache']")
        traits.add("teacache:probe")
        if data.get("coefficients") is not None:
            check_coefficients(data["coefficients"], "extras['teacache']")
            if not isinstance(data.get("source"), str) or not data["source"]:
                raise ValueError("extras['teacache']: 'source' must say where the coefficients come from")
            traits.add("teacache:coefficients")
    if store.calibrations(family.name):
        traits |= {"teacache:coefficients", "teacache:probe"}
    return traits
