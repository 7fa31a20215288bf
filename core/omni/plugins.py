"""Plugin discovery and the registry of declarations (conda/otel style, wrapped around pluggy).

* One scan of the entry-point group ``omni``; each plugin is imported and registered in isolation.
  A plugin that raises on import is ``failed``; one whose declarations do not validate, that
  implements an unknown hook, or that clashes on a name with an earlier plugin is ``invalid``.
  The rest keeps working. ``OMNI_STRICT_PLUGINS=1`` turns every problem into a PluginError.
* Disabling happens *before* import: ``OMNI_DISABLE_PLUGINS=a,b``, ``OMNI_LOAD_PLUGINS=a,b``
  (allowlist; set but empty = none), ``--no-plugins``. Names are compared normalised, so
  ``omni-plugin-teacache`` == ``omni_plugin_teacache`` == ``teacache``.
* Order is deterministic (plugins sorted by name, declarations sorted by name), never pluggy's LIFO.
* Every declaration keeps its provenance (:class:`PluginRef`: plugin, distribution, version).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pluggy

from omni import hookspecs
from omni.errors import DeclarationError, PluginError
from omni.names import norm, plugin_id
from omni.specs import FamilySpec, ModelSpec, OptimizationSpec
from omni.traits import VOCABULARY

GROUP = "omni"
T = TypeVar("T")

_DECLARATION_HOOKS = {
    "omni_register_families": ("family", FamilySpec),
    "omni_register_optimizations": ("optimization", OptimizationSpec),
    "omni_register_models": ("model", ModelSpec),
}


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
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "provides": self.provides,
            "hooks": self.hooks,
            "error": self.error,
        }


@dataclass
class Registry:
    """All loaded declarations, keyed by normalised name, plus the state of every plugin."""

    pm: pluggy.PluginManager
    plugins: list[PluginRecord]
    families: dict[str, Declared[FamilySpec]]
    optimizations: dict[str, Declared[OptimizationSpec]]
    models: dict[str, Declared[ModelSpec]]
    warnings: list[str]

    def family(self, name: str) -> Declared[FamilySpec]:
        return self.families[norm(name)]

    def optimization(self, name: str) -> Declared[OptimizationSpec]:
        return self.optimizations[norm(name)]

    @property
    def problems(self) -> list[str]:
        return [f"plugin {p.name!r} {p.status}: {p.error}" for p in self.plugins if p.status in ("failed", "invalid")]


@dataclass(frozen=True)
class Selection:
    """Which plugins may be imported (computed from env vars / CLI flags before any import)."""

    no_plugins: bool = False
    allow: frozenset[str] | None = None  # None = all
    deny: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, no_plugins: bool = False) -> Selection:
        environ = os.environ if environ is None else environ

        def names(var: str) -> frozenset[str]:
            return frozenset(plugin_id(n) for n in environ.get(var, "").split(",") if n.strip())

        allow = names("OMNI_LOAD_PLUGINS") if "OMNI_LOAD_PLUGINS" in environ else None
        no = no_plugins or environ.get("OMNI_NO_PLUGINS", "") not in ("", "0")
        return cls(no_plugins=no, allow=allow, deny=names("OMNI_DISABLE_PLUGINS"))

    def why_blocked(self, name: str, distribution: str) -> str | None:
        keys = {plugin_id(name), plugin_id(distribution)}
        if self.no_plugins:
            return "disabled by --no-plugins"
        if keys & self.deny:
            return "disabled by OMNI_DISABLE_PLUGINS"
        if self.allow is not None and not keys & self.allow:
            return "not in OMNI_LOAD_PLUGINS"
        return None


def strict_from_env(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get("OMNI_STRICT_PLUGINS", "") not in ("", "0")


def _entry_points(path: list[str] | None) -> list[tuple[md.EntryPoint, str, str]]:
    seen: dict[str, tuple[md.EntryPoint, str, str]] = {}
    for dist in md.distributions(path=path if path is not None else sys.path):
        try:
            eps = [ep for ep in dist.entry_points if ep.group == GROUP]
        except Exception:  # a broken dist-info must not brick discovery
            continue
        if not eps:
            continue
        dist_name = dist.metadata["Name"] or "?"
        for ep in eps:
            seen.setdefault(ep.name, (ep, dist_name, dist.version or "?"))
    return [seen[k] for k in sorted(seen)]


def _as_list(result: Any) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, (FamilySpec, OptimizationSpec, ModelSpec)):
        return [result]
    if isinstance(result, Iterable) and not isinstance(result, (str, bytes, Mapping)):
        return list(result)
    return [result]


def _foreign_hooks(plugin: Any) -> list[str]:
    known = set(_DECLARATION_HOOKS) | set(hookspecs.STAGE_HOOKS) | {"omni_register_commands"}
    out = []
    for attr in dir(plugin):
        if attr.startswith("omni_") and attr not in known:
            if getattr(getattr(plugin, attr, None), hookspecs.PROJECT + "_impl", None) is not None:
                out.append(attr)
    return out


class _Loader:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs.OmniSpecs)
        self.records: list[PluginRecord] = []
        self.decls: dict[str, dict[str, Declared[Any]]] = {"family": {}, "optimization": {}, "model": {}}
        self.warnings: list[str] = []

    def _problem(self, record: PluginRecord, status: str, error: str) -> None:
        record.status, record.error = status, error
        if self.pm.get_plugin(record.name) is not None:
            self.pm.unregister(name=record.name)
        if self.strict:
            raise PluginError(f"plugin {record.name!r} ({record.distribution} {record.version}) {status}: {error}")

    def add(self, name: str, dist: str, version: str, load: Callable[[], Any]) -> None:
        record = PluginRecord(name=name, distribution=dist, version=version, status="active")
        self.records.append(record)
        try:
            plugin = load()
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            return self._problem(record, "failed", f"import raised {type(exc).__name__}: {exc}")
        unknown = _foreign_hooks(plugin)
        if unknown:
            return self._problem(record, "invalid", f"implements unknown hook(s) {', '.join(unknown)}")
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - PluginValidationError, duplicate object, ...
            return self._problem(record, "invalid", f"registration failed: {exc}")
        record.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
        self._collect(record)

    def _collect(self, record: PluginRecord) -> None:
        ref = record.ref
        found: dict[str, list[Any]] = {}
        for hook_name, (kind, cls) in _DECLARATION_HOOKS.items():
            impls = [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if i.plugin_name == record.name]
            items: list[Any] = []
            for impl in impls:
                try:
                    items.extend(_as_list(impl.function()))
                except DeclarationError as exc:
                    return self._problem(record, "invalid", f"{hook_name}: {exc}")
                except Exception as exc:  # noqa: BLE001
                    return self._problem(record, "failed", f"{hook_name} raised {type(exc).__name__}: {exc}")
            for item in items:
                if not isinstance(item, cls):
                    return self._problem(
                        record, "invalid", f"{hook_name} yielded {type(item).__name__}, expected {cls.__name__}"
                    )
            found[kind] = items
        # no half-registered plugins: check everything before adding anything
        for kind, items in found.items():
            names = [norm(i.name) for i in items]
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                return self._problem(record, "invalid", f"declares {kind} {sorted(dup)[0]!r} twice")
            for item in items:
                other = self.decls[kind].get(norm(item.name))
                if other is not None:
                    return self._problem(
                        record,
                        "invalid",
                        f"{kind} {item.name!r} is already declared by {other.plugin}; "
                        f"this plugin is {record.distribution} {record.version}",
                    )
        for item in found.get("optimization", []):
            stage_hook = f"omni_{item.stage.value}"
            if item.impl is None and stage_hook not in record.hooks:
                return self._problem(
                    record, "invalid", f"optimization {item.name!r} has no impl and the plugin has no {stage_hook} hook"
                )
        for kind, items in found.items():
            for item in items:
                self.decls[kind][norm(item.name)] = Declared(item, ref)
                record.provides.append(f"{kind}:{item.name}")
                for trait in _traits_of(item):
                    if trait not in VOCABULARY:
                        self.warnings.append(f"plugin {record.name!r}: {kind} {item.name!r} uses unknown trait {trait!r}")

    def finish(self) -> None:
        families = self.decls["family"]
        for key, declared in list(self.decls["model"].items()):
            if declared.spec.family not in families:
                record = next(r for r in self.records if r.name == declared.plugin.name)
                del self.decls["model"][key]
                record.provides.remove(f"model:{declared.spec.name}")
                msg = f"model {declared.spec.name!r} names unknown family {declared.spec.family!r}"
                self.warnings.append(f"plugin {record.name!r}: {msg} (model dropped)")
                if self.strict:
                    raise PluginError(f"plugin {record.name!r}: {msg}")


def _traits_of(item: Any) -> Iterable[str]:
    if isinstance(item, FamilySpec):
        return item.extra_traits
    if isinstance(item, OptimizationSpec):
        return item.requires_traits
    return ()


def load_registry(
    *,
    selection: Selection | None = None,
    strict: bool | None = None,
    path: list[str] | None = None,
    extra: Iterable[tuple[str, Any]] = (),
) -> Registry:
    """Scan entry points once, import allowed plugins in isolation, validate and index declarations.

    ``path`` restricts the scan (tests use a folder of fake ``*.dist-info``); ``extra`` registers
    in-process plugin objects as ``(name, module_or_object)`` (provenance ``<in-process>``).
    """
    selection = selection or Selection.from_env()
    loader = _Loader(strict_from_env() if strict is None else strict)
    from omni.runtime import dispatch  # the built-in default stage implementations (no torch import)

    loader.pm.register(dispatch, name="omni.dispatch")
    for ep, dist, version in _entry_points(path):
        why = selection.why_blocked(ep.name, dist)
        if why:
            loader.records.append(PluginRecord(ep.name, dist, version, "disabled", error=why))
            loader.pm.set_blocked(ep.name)
            continue
        loader.add(ep.name, dist, version, ep.load)
    for name, obj in extra:
        if selection.why_blocked(name, name) is None:
            loader.add(name, "<in-process>", "0", lambda obj=obj: obj)
    loader.finish()
    loader.records.sort(key=lambda r: r.name)
    sort = lambda d: dict(sorted(d.items()))  # noqa: E731
    return Registry(
        pm=loader.pm,
        plugins=loader.records,
        families=sort(loader.decls["family"]),
        optimizations=sort(loader.decls["optimization"]),
        models=sort(loader.decls["model"]),
        warnings=loader.warnings,
    )


_CACHED: Registry | None = None


def get_registry(*, reload: bool = False, **kwargs: Any) -> Registry:
    """The process-wide registry (loaded on first use)."""
    global _CACHED
    if _CACHED is None or reload or kwargs:
        reg = load_registry(**kwargs)
        if kwargs:
            return reg
        _CACHED = reg
    return _CACHED


def set_registry(registry: Registry | None) -> None:
    """Install a registry for this process (CLI flags, tests)."""
    global _CACHED
    _CACHED = registry


def import_path(path: str) -> Any:
    """Import ``"package.module:attr"`` (the lazy ``impl`` / ``load`` / ``build`` references)."""
    module_name, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
