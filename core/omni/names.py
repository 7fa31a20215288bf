"""Name normalisation shared by plugins, declarations and the CLI (no heavy imports)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

_PREFIXES = ("omni_plugin_", "omni_family_", "omni_model_", "omni_")


def norm(name: str) -> str:
    """Compare-key for declaration names: ``First-Block.Cache`` -> ``first_block_cache``."""
    return name.strip().lower().replace("-", "_").replace(".", "_")


def plugin_id(name: str) -> str:
    """Compare-key for plugin names: ``omni-plugin-teacache`` == ``omni_plugin_teacache`` == ``teacache``."""
    key = norm(name)
    for prefix in _PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix):]
    return key


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates close to ``name`` (compared normalised), best first."""
    cands = list(dict.fromkeys(candidates))
    by_key = {norm(c): c for c in cands}
    hits = difflib.get_close_matches(norm(name), list(by_key), n=n, cutoff=0.5)
    out = [by_key[h] for h in hits]
    if not out:  # substring fallback: "flux" -> "tiny-flux"
        out = [c for c in cands if norm(name) in norm(c)][:n]
    return out


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    hits = closest(name, candidates)
    return f" (did you mean {', '.join(hits)}?)" if hits else ""
