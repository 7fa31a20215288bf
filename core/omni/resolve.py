"""Resolve a MODEL argument to a family, offline and without loading weights.

Order: an existing local folder (``model_index.json`` ``_class_name``), a named model
(``tiny-flux``, ``shapes``), a family name (``flux``), a hub id matched by declared patterns
(``black-forest-labs/FLUX.1-dev``). Anything else is a one-line error with the closest names.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from omni.errors import UnknownModelError, UsageError
from omni.options import shown
from omni.names import did_you_mean, plugin_id
from omni.registry import ContestedName, Registry, contest_message
from omni.specs import ModelSpec


@dataclass(frozen=True)
class ResolvedModel:
    ref: str
    family: str
    kind: str  # local | named | family | hub
    how: str
    path: str | None = None
    hub_id: str | None = None
    model: ModelSpec | None = None
    pipeline_class: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "family": self.family,
            "kind": self.kind,
            "how": self.how,
            "path": self.path,
            "hub_id": self.hub_id,
            "pipeline_class": self.pipeline_class,
        }


def disabled_owner(registry: Registry, name: str) -> str | None:
    """When a plugin disabled for this run probably provides ``name`` (its name is part of it:
    ``tiny-flux`` and plugin ``flux``, ``tea_cache_ratio`` and ``teacache``), say so; a disabled plugin is
    never imported, so what it declares is unknown and neighbours would mislead."""
    squash = lambda text: re.sub(r"[^a-z0-9]", "", text.lower())  # noqa: E731
    target = squash(name)
    for rec in registry.plugins:
        if rec.status == "disabled" and len(squash(plugin_id(rec.name))) >= 3 and squash(plugin_id(rec.name)) in target:
            return f"plugin {rec.name} ({rec.distribution}), which may provide it, is {rec.error or 'disabled'}"
    return None


def _family_for_class(registry: Registry, class_name: str) -> str | None:
    found = registry.family_for_pipeline(class_name)
    return found.spec.name if found is not None else None


def read_model_index(folder: str) -> dict[str, Any]:
    index = os.path.join(folder, "model_index.json")
    if not os.path.isfile(index):
        raise UsageError(f"{folder} is a folder but holds no model_index.json (not a diffusers pipeline folder)")
    try:
        with open(index, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{index} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("_class_name"), str):
        raise UsageError(f"{index} has no _class_name")
    return data


def resolve_model(ref: str, registry: Registry) -> ResolvedModel:
    if not ref or not ref.strip():
        raise UsageError("MODEL is empty")
    expanded = os.path.expanduser(ref)
    if os.path.isdir(expanded):
        cls = read_model_index(expanded)["_class_name"]
        family = _family_for_class(registry, cls)
        if family is None:
            catch_all = registry.catch_all()
            if catch_all is None:
                known = sorted({c for d in registry.families.values() for c in d.spec.pipelines})
                raise UnknownModelError(
                    f"no installed family handles pipeline class {cls} (from {expanded}/model_index.json)"
                    f"{did_you_mean(cls, known)}"
                )
            return ResolvedModel(ref, catch_all.spec.name, "local",
                                 f"local folder: no installed family claims {cls}; {catch_all.spec.name} family "
                                 "(traits inferred)", path=os.path.abspath(expanded), pipeline_class=cls)
        return ResolvedModel(ref, family, "local", f"local folder: model_index.json _class_name {cls}",
                             path=os.path.abspath(expanded), pipeline_class=cls)
    named = registry.find("model", ref)
    if named is not None:
        spec = named.spec
        registry.family(spec.family)  # a contested family stops here, naming both distributions
        return ResolvedModel(ref, spec.family, "named", f"named model {spec.name} ({spec.summary})", model=spec)
    fam = registry.find("family", ref)
    if fam is not None:
        return ResolvedModel(ref, fam.spec.name, "family", f"family name {fam.spec.name}")
    if "/" in ref and not ref.startswith((".", "/", "~")):
        matches = registry.families_for_hub_id(ref)
        families = {d.spec.name: (d, p) for d, p in matches}
        if len(families) > 1:
            raise ContestedName(contest_message("hub id", ref, tuple(d for d, _ in families.values())))
        if families:
            declared, pattern = next(iter(families.values()))
            return ResolvedModel(ref, declared.spec.name, "hub",
                                 f"hub id matches {pattern!r} of family {declared.spec.name}", hub_id=ref)
    looks_like_path = ref.startswith((".", "/", "~")) or ref.count("/") > 1
    if looks_like_path:
        what = "is not a folder" if os.path.exists(expanded) else "does not exist"
        raise UnknownModelError(f"model folder {ref} {what}")
    owner = disabled_owner(registry, ref)
    if owner:
        raise UnknownModelError(f"unknown model {shown(ref)}: {owner}")
    names = [d.spec.name for d in registry.models.values()] + [d.spec.name for d in registry.families.values()]
    hint = did_you_mean(ref, names) or (f" (known: {', '.join(names[:12])})" if names else " (no families installed)")
    raise UnknownModelError(f"unknown model {shown(ref)}{hint}")


def inferred_registry(resolved: ResolvedModel, registry: Registry, pipe: Any = None,
                      index: dict[str, Any] | None = None) -> tuple[Registry, list[str]]:
    """For a model of a catch-all family: a registry whose family carries the facts inferred for this model
    (from ``model_index.json``, and from ``pipe`` once loaded), and the notes saying what was inferred.
    Any other model: the registry unchanged, no notes."""
    import dataclasses

    from omni.behaviour import resolve

    declared = registry.family(resolved.family)
    if declared.spec.infer is None or (resolved.path is None and index is None):
        return registry, []
    try:
        source = index if index is not None else read_model_index(str(resolved.path))
        facts, notes = resolve(declared.spec.infer)(source, pipe)
    except ValueError as exc:
        raise UnknownModelError(f"{resolved.ref}: the {declared.spec.name} family cannot run it: {exc}") from None
    return registry.with_family(dataclasses.replace(declared.spec, facts=facts)), notes
