"""Calibration files (JSON), one per family: ``$OMNI_TEACACHE_DIR`` or ``<omni cache>/teacache/<family>.json``.

Read at declaration time (no torch), so a calibrated family gets a ``supported`` TeaCache cell.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REQUIRED = ("family", "probe", "coefficients")


def store_dir() -> Path:
    env = os.environ.get("OMNI_TEACACHE_DIR")
    if env:
        return Path(env).expanduser()
    from omni.tiny import cache_root

    return cache_root().parent / "teacache"


def read(path: str | Path) -> dict[str, Any]:
    """Load and validate one calibration file; raises ValueError with a one-line reason."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read TeaCache calibration {path}: {exc}") from None
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(f"TeaCache calibration {path} lacks {', '.join(missing)}")
    coeffs = data["coefficients"]
    if not isinstance(coeffs, list) or len(coeffs) != 5 or not all(isinstance(c, (int, float)) for c in coeffs):
        raise ValueError(f"TeaCache calibration {path}: coefficients must be 5 numbers")
    return data


def calibrated() -> dict[str, dict[str, Any]]:
    """family -> calibration data for every valid file in the store (invalid files are ignored here
    and reported when a run tries to use them)."""
    out = {}
    folder = store_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                data = read(path)
            except ValueError:
                continue
            data["path"] = str(path)
            out[data["family"]] = data
    return out
