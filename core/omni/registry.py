"""The registry of loaded declarations: provenance, contested names, derived family traits, and the
cross-plugin checks ``omni plugins`` reports. Built by :func:`omni.plugins.load_registry`."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import pluggy

from omni.errors import UsageError
from omni.names import did_you_mean, norm
from omni.specs import FamilySpec, ModelSpec, OptimizationSpec, PresetSpec

T = TypeVar("T")
KINDS: dict[str, type] = {"family": FamilySpec, "optimization": OptimizationSpec, "model": ModelSpec,
                          "preset": PresetSpec}


@dataclass(frozen=True)
class PluginRef:
    """Where a declaration came from."""

    name: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} ({self.distribution} {self.version})"

    def to_json(self) -> dict[str, str]:
        return {"plugin": self.name, "distribution": self.distribution, "version": self.version}


@dataclass(frozen=True)
class Declared(Generic[T]):
    spec: T
    plugin: PluginRef


@dataclass
class PluginRecord:
    name: str
    distribution: str
    version: str
    status: str  # active | disabled | failed | invalid
    error: str | None = None
    provides: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)

    @property
    def ref(self) -> PluginRef:
        return PluginRef(self.name, self.distribution, self.version)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "status": self.status, "provides": self.provides, "hooks": self.hooks, "error": self.error}


class ContestedName(UsageError):
    """A name that two distributions declare: it resolves to neither until the user disables one."""


def contest_message(kind: str, name: str, contenders: tuple[Declared[Any], ...]) -> str:
    who = " and ".join(f"{d.plugin.distribution} {d.plugin.version} (plugin {d.plugin.name})" for d in contenders)
    plugins = ", ".join(d.plugin.name for d in contenders)
    return (f"{kind} {name!r} is declared by {who}; omni will not choose: disable one with "
            f"OMNI_DISABLE_PLUGINS (one of: {plugins})")


@dataclass
class Registry:
    """All loaded declarations, keyed by normalised name, plus the state of every plugin."""

    pm: pluggy.PluginManager
    plugins: list[PluginRecord]
    families: dict[str, Declared[FamilySpec]]
    optimizations: dict[str, Declared[OptimizationSpec]]
    models: dict[str, Declared[ModelSpec]]
    presets: dict[str, Declared[PresetSpec]]
    contested: dict[tuple[str, str], tuple[Declared[Any], ...]] = field(default_factory=dict)
    family_traits: dict[str, frozenset[str]] = field(default_factory=dict)
    vocabulary: dict[str, str] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)  # cross-plugin checks, shown by `omni plugins`

    # ------------------------------------------------------------------ lookups
    def _table(self, kind: str) -> dict[str, Declared[Any]]:
        tables: dict[str, dict[str, Declared[Any]]] = {
            "family": self.families, "optimization": self.optimizations,  # type: ignore[dict-item]
            "model": self.models, "preset": self.presets}  # type: ignore[dict-item]
        return tables[kind]

    def find(self, kind: str, name: str) -> Declared[Any] | None:
        """The declaration of ``name`` or None; raises :class:`ContestedName` for a contested name."""
        key = norm(name)
        contenders = self.contested.get((kind, key))
        if contenders:
            raise ContestedName(contest_message(kind, name, contenders))
        return self._table(kind).get(key)

    def get(self, kind: str, name: str) -> Declared[Any]:
        found = self.find(kind, name)
        if found is None:
            names = [d.spec.name for d in self._table(kind).values()]
            raise UsageError(f"unknown {kind} {name!r}{did_you_mean(name, names)}")
        return found

    def family(self, name: str) -> Declared[FamilySpec]:
        return self.get("family", name)

    def optimization(self, name: str) -> Declared[OptimizationSpec]:
        return self.get("optimization", name)

    def model(self, name: str) -> Declared[ModelSpec]:
        return self.get("model", name)

    def preset(self, name: str) -> Declared[PresetSpec]:
        return self.get("preset", name)

    def traits(self, family: str) -> frozenset[str]:
        """The family's traits: derived by the core from its facts, its ``extra_traits``, and the
        traits optimization plugins derive from its ``extras``."""
        key = norm(family)
        if key not in self.family_traits:
            self.family(family)  # raises for unknown / contested
        return self.family_traits[key]

    def families_for_pipeline(self, class_name: str) -> list[Declared[FamilySpec]]:
        out = [d for d in self.families.values() if class_name in d.spec.pipelines]
        out += [c for (kind, _), cs in self.contested.items() if kind == "family" for c in cs
                if class_name in c.spec.pipelines]
        return out

    def family_for_pipeline(self, class_name: str) -> Declared[FamilySpec] | None:
        """The one family that handles ``class_name``; raises :class:`ContestedName` when two do."""
        found = self.families_for_pipeline(class_name)
        if len(found) > 1:
            raise ContestedName(contest_message("pipeline class", class_name, tuple(found)))
        return found[0] if found else None

    def families_for_hub_id(self, hub_id: str) -> list[tuple[Declared[FamilySpec], str]]:
        return [(d, p) for d in self.families.values() for p in d.spec.hub_patterns
                if fnmatch.fnmatch(hub_id.lower(), p.lower())]

    def catch_all(self) -> Declared[FamilySpec] | None:
        """The family that handles pipeline classes no family claims (``FamilySpec.infer``), if installed."""
        found = [d for d in self.families.values() if d.spec.catch_all]
        if len(found) > 1:
            raise ContestedName(contest_message("catch-all family", found[0].spec.name, tuple(found)))
        return found[0] if found else None

    def with_family(self, spec: FamilySpec) -> Registry:
        """A copy of this registry where the family ``spec.name`` is replaced by ``spec`` (a catch-all family
        with the facts inferred for one model), its traits derived again."""
        import dataclasses

        from omni.behaviour import resolve

        key = norm(spec.name)
        old = self.family(spec.name)
        declared = Declared(spec, old.plugin)
        families = {**self.families, key: declared}
        copy = dataclasses.replace(self, families=families, family_traits=dict(self.family_traits),
                                   findings=list(self.findings))
        copy.family_traits[key], _ = family_traits(copy, declared, resolve)
        return copy

    @property
    def problems(self) -> list[str]:
        """What every command warns about: broken plugins and contested names."""
        out = [f"plugin {p.name!r} {p.status}: {p.error}" for p in self.plugins if p.status in ("failed", "invalid")]
        out += [contest_message(kind, cs[0].spec.name, cs) for (kind, _), cs in self.contested.items()]
        return out


# ---------------------------------------------------------------------------- cross-plugin checks
def contest_duplicates(decls: dict[str, dict[str, list[Declared[Any]]]]) -> tuple[
        dict[str, dict[str, Declared[Any]]], dict[tuple[str, str], tuple[Declared[Any], ...]]]:
    """Split declarations into unique names and contested names (declared by two plugins)."""
    unique: dict[str, dict[str, Declared[Any]]] = {kind: {} for kind in KINDS}
    contested: dict[tuple[str, str], tuple[Declared[Any], ...]] = {}
    for kind, by_name in decls.items():
        for key, found in by_name.items():
            if len(found) == 1:
                unique[kind][key] = found[0]
            else:
                contested[(kind, key)] = tuple(found)
    return unique, contested


def _readers(reg: Registry) -> dict[str, Declared[OptimizationSpec]]:
    return {d.spec.name: d for d in reg.optimizations.values() if d.spec.family_traits is not None}


def family_traits(reg: Registry, fam: Declared[FamilySpec], behaviour: Any) -> tuple[frozenset[str], list[str]]:
    """One family's traits: the core's from its facts, plus what each reading plugin derives from its
    ``extras`` (every reader sees every family, with an empty mapping when the family has no data for it: a
    plugin may also derive traits from its own data, such as TeaCache's calibration files). -> (traits, findings)"""
    traits = set(fam.spec.core_traits)
    findings = []
    for data_key, reader in _readers(reg).items():
        data = fam.spec.extras.get(data_key, MappingProxyType({}))
        try:
            gained = set(behaviour(reader.spec.family_traits)(fam.spec, data) or ())
        except Exception as exc:  # noqa: BLE001 - bad family data must not brick the host
            findings.append(f"family {fam.spec.name!r} ({fam.plugin.distribution}): extras[{data_key!r}] "
                            f"rejected by {reader.plugin}: {exc}")
            continue
        undeclared = gained - set(reader.spec.traits)
        if undeclared:
            findings.append(f"optimization {data_key!r} derived undeclared trait(s) {sorted(undeclared)}")
            gained -= undeclared
        traits |= gained
    return frozenset(traits), findings


def derive_family_traits(reg: Registry, behaviour: Any) -> None:
    """Fill ``reg.family_traits`` and ``reg.vocabulary``; record findings. ``behaviour`` resolves an
    import path or callable (``omni.behaviour.resolve``)."""
    from omni.traits import MEANINGS

    reg.vocabulary = dict(MEANINGS)
    for declared in reg.optimizations.values():
        for trait, meaning in declared.spec.traits.items():
            reg.vocabulary.setdefault(trait, meaning)
    readers = _readers(reg)
    for key, fam in reg.families.items():
        for data_key in fam.spec.extras:
            if data_key not in readers:
                reg.findings.append(f"family {fam.spec.name!r} ({fam.plugin.distribution}): extras[{data_key!r}] is "
                                    f"read by no installed optimization{did_you_mean(data_key, list(readers))}")
        reg.family_traits[key], found = family_traits(reg, fam, behaviour)
        reg.findings.extend(found)
    for fam in reg.families.values():
        for trait in sorted(fam.spec.extra_traits - set(reg.vocabulary)):
            reg.findings.append(f"family {fam.spec.name!r}: extra trait {trait!r} is declared by no plugin")
    for opt in reg.optimizations.values():
        for trait in sorted(opt.spec.requires_traits - set(reg.vocabulary)):
            reg.findings.append(f"optimization {opt.spec.name!r} requires trait {trait!r}, which no plugin declares")


def check_references(reg: Registry) -> None:
    """Claims naming nothing installed, overlapping hub patterns, pipelines two families claim."""
    opt_names = [d.spec.name for d in reg.optimizations.values()]
    fam_names = [d.spec.name for d in reg.families.values()]
    contested_opts = {k for (kind, k) in reg.contested if kind == "optimization"}
    contested_fams = {k for (kind, k) in reg.contested if kind == "family"}
    for fam in reg.families.values():
        for key in fam.spec.claims:
            opt, _, task = key.partition("@")
            if task and task not in fam.spec.facts.tasks:
                reg.findings.append(f"family {fam.spec.name!r} claims {key!r} for a task it does not declare")
            if opt not in reg.optimizations and opt not in contested_opts:
                reg.findings.append(f"family {fam.spec.name!r} claims {opt!r}, which no installed plugin declares"
                                    f"{did_you_mean(opt, opt_names)}")
    for model in reg.models.values():
        owner = reg.families.get(model.spec.family)
        if model.spec.task and owner is not None and model.spec.task not in owner.spec.task_pipelines:
            reg.findings.append(f"model {model.spec.name!r} runs task {model.spec.task!r}, for which family "
                                f"{owner.spec.name!r} names no pipeline (task_pipelines)")
    for declared in reg.optimizations.values():
        for key in declared.spec.claims:
            fam_key = key.partition("@")[0]
            if fam_key not in reg.families and fam_key not in contested_fams:
                reg.findings.append(f"optimization {declared.spec.name!r} claims family {fam_key!r}, which is not "
                                    f"installed{did_you_mean(fam_key, fam_names)}")
    for fam in reg.families.values():
        for declared in reg.optimizations.values():
            o = declared.spec
            claims = [c for c in (fam.spec.claims.get(o.name), o.claims.get(fam.spec.name)) if c]
            if any(c.status.value == "supported" for c in claims):
                missing = sorted(o.requires_traits - reg.family_traits.get(fam.spec.name, frozenset()))
                if missing:
                    reg.findings.append(f"{fam.spec.name} × {o.name} is claimed supported, but {fam.spec.name} "
                                        f"lacks {', '.join(missing)} required by {o.name}: the cell is unsupported")
    fams = list(reg.families.values())
    for i, a in enumerate(fams):
        for b in fams[i + 1:]:
            shared = sorted(set(a.spec.pipelines) & set(b.spec.pipelines))
            for cls in shared:
                reg.findings.append(f"pipeline class {cls} is claimed by families {a.spec.name!r} and {b.spec.name!r}; "
                                    "a folder of that class resolves to neither")
            for pa in a.spec.hub_patterns:
                for pb in b.spec.hub_patterns:
                    if fnmatch.fnmatch(pa.lower(), pb.lower()) or fnmatch.fnmatch(pb.lower(), pa.lower()):
                        reg.findings.append(f"hub patterns {pa!r} ({a.spec.name}) and {pb!r} ({b.spec.name}) overlap; "
                                            "a hub id matching both resolves to neither")
