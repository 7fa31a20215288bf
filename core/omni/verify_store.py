"""Local proofs: cells an author proved on this machine with ``omni verify --include-untested``.

Stored as JSON under omni's cache dir (``<cache>/verify/local-proofs.json``); read by the matrix to
show a proof next to an ``untested`` cell. A local proof never turns a cell ``supported``: that
needs a claim in a declaration, which ``omni verify`` then proves everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def store_path() -> Path:
    from omni.tiny import omni_cache_root

    return omni_cache_root() / "verify" / "local-proofs.json"


def local_proofs() -> dict[tuple[str, str], dict[str, Any]]:
    """(family, optimization) -> the recorded proof; a missing or unreadable file is empty."""
    path = store_path()
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(rows, list):
        return {}
    out = {}
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("family"), str) and isinstance(row.get("optimization"), str):
            out[(row["family"], row["optimization"])] = row
    return out


def record(results: list[Any]) -> Path:
    """Add passing results of untested cells (``VerifyResult``s); failing ones remove an old proof."""
    proofs = local_proofs()
    for r in results:
        key = (r.family, r.optimization)
        if r.status == "pass":
            proofs[key] = {"family": r.family, "optimization": r.optimization, "model": r.model, "date": r.date,
                           "device": r.device, "psnr": r.psnr, "max_abs": r.max_abs}
        elif r.status == "fail":
            proofs.pop(key, None)
    path = store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sorted(proofs.values(), key=lambda p: (p["family"], p["optimization"])), indent=2) + "\n")
    tmp.replace(path)
    return path
