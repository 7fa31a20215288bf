"""Calibration files (JSON) of ``omni calibrate teacache``: one per family and model, in
``$OMNI_TEACACHE_DIR`` or omni's cache dir (``<cache>/teacache/<family>--<model>.json``). Light: read
when plugins load (no torch).

A file says which ``model`` it was fitted on and on which ``weights`` (``random``: a random-weight
test model; ``trained``). A trained fit serves the whole family (in the catch-all generic family, only its own model); a random one is *unverified*: it serves
only runs of its own model, or a run that names it explicitly (``teacache.calibration=FILE``)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from omni.sdk import cache_dir

REQUIRED = ("family", "probe", "coefficients")


def store_dir() -> Path:
    env = os.environ.get("OMNI_TEACACHE_DIR")
    if env:
        return Path(env).expanduser()
    return cache_dir("teacache")


def file_for(family: str, model: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_.")[-80:] or "model"
    return store_dir() / f"{family}--{slug}.json"


def read(path: str | Path) -> dict[str, Any]:
    """Load and validate one calibration file; raises ValueError with a one-line reason."""
    from omni_plugin_teacache.facts import check_coefficients, check_probe

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read TeaCache calibration {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"TeaCache calibration {path} does not hold a mapping")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(f"TeaCache calibration {path} lacks {', '.join(missing)}")
    check_coefficients(data["coefficients"], f"TeaCache calibration {path}")
    check_probe(data["probe"], f"TeaCache calibration {path}")
    data["path"] = str(path)
    return data


def verified(data: dict[str, Any]) -> bool:
    """A fit on trained weights; files without ``weights`` count as unverified."""
    return data.get("weights") == "trained"


def calibrations(family: str) -> list[dict[str, Any]]:
    """Every valid calibration of ``family`` in the store, newest first (invalid files are ignored
    here; a run that names one reports why)."""
    try:
        folder = store_dir()
        paths = sorted(folder.glob(f"{family}--*.json"), key=lambda p: p.stat().st_mtime, reverse=True) \
            if folder.is_dir() else []
    except OSError:  # an unreadable cache dir means no calibration, never a broken plugin
        return []
    out = []
    for path in paths:
        try:
            data = read(path)
        except ValueError:
            continue
        if data["family"] == family:
            out.append(data)
    return out


def model_id(resolved: Any) -> str:
    """How a calibration names the model it was fitted on: the named model, else the hub id or folder,
    else the reference the run was given (a pipeline object's class)."""
    if resolved.model is not None:
        return resolved.model.name
    return resolved.hub_id or resolved.path or resolved.ref
