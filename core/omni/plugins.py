"""Plugin discovery and loading (conda/otel style, wrapped around pluggy).

* One scan of the entry-point group ``omni``; each plugin is imported and registered in isolation.
  **Any** exception at import or in a declaration hook — ``SystemExit`` included — makes the plugin
  ``failed``; declarations that do not validate, an unknown ``omni_*`` hook, or a non-wrapper
  ``omni_step`` make it ``invalid``. The rest keeps working. ``OMNI_STRICT_PLUGINS=1`` turns every
  problem into a :class:`PluginError`.
* Disabling happens *before* import: ``OMNI_DISABLE_PLUGINS=a,b``, ``OMNI_LOAD_PLUGINS=a,b``
  (allowlist; set but empty = none), ``--no-plugins``. Names are compared normalised, so
  ``omni-plugin-teacache`` == ``omni_plugin_teacache`` == ``teacache``.
* A name two distributions declare is *contested* (:mod:`omni.registry`), never settled by order.
* Every declaration keeps its provenance (:class:`omni.registry.PluginRef`).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from omni import hookspecs
from omni.behaviour import resolve
from omni.errors import DeclarationError, PluginError
from omni.names import norm, plugin_id
from omni.registry import (
    KINDS,
    Declared,
    PluginRecord,
    Registry,
    check_references,
    contest_duplicates,
    derive_family_traits,
)

GROUP = "omni"
CORE_PLUGIN = "omni.core"


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


def _entry_points(path: list[str] | None) -> list[tuple[str, md.EntryPoint, str, str]]:
    """(unique plugin name, entry point, distribution, version), sorted. Two distributions using the
    same entry-point name both load (the second under ``name@distribution``)."""
    found: list[tuple[md.EntryPoint, str, str]] = []
    seen_dists: set[str] = set()
    for dist in md.distributions(path=path if path is not None else sys.path):
        try:
            eps = [ep for ep in dist.entry_points if ep.group == GROUP]
            dist_name = dist.metadata["Name"] or "?"
        except Exception:  # noqa: BLE001 - a broken dist-info must not brick discovery
            continue
        if not eps or norm(dist_name) in seen_dists:  # the same distribution twice on sys.path
            continue
        seen_dists.add(norm(dist_name))
        found.extend((ep, str(dist_name), dist.version or "?") for ep in eps)
    found.sort(key=lambda t: (t[0].name, t[1]))
    out: list[tuple[str, md.EntryPoint, str, str]] = []
    used: set[str] = set()
    for ep, dist_name, version in found:
        name = ep.name if ep.name not in used else f"{ep.name}@{dist_name}"
        used.add(name)
        out.append((name, ep, dist_name, version))
    return out


def _as_list(result: Any) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, tuple(KINDS.values())):
        return [result]
    if isinstance(result, Iterable) and not isinstance(result, (str, bytes, Mapping)):
        return list(result)
    return [result]


def _foreign_hooks(plugin: Any) -> list[str]:
    known = {name for name in dir(hookspecs.OmniSpecs) if name.startswith("omni_")}
    out = []
    for attr in dir(plugin):
        if attr.startswith("omni_") and attr not in known:
            if getattr(getattr(plugin, attr, None), hookspecs.PROJECT + "_impl", None) is not None:
                out.append(attr)
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


class _Loader:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs.OmniSpecs)
        self.records: list[PluginRecord] = []
        self.decls: dict[str, dict[str, list[Declared[Any]]]] = {kind: {} for kind in KINDS}
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
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit at import must not stop the host
            return self._problem(record, "failed", f"import raised {_first_line(exc)}")
        unknown = _foreign_hooks(plugin)
        if unknown:
            return self._problem(record, "invalid", f"implements unknown hook(s) {', '.join(unknown)}")
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - PluginValidationError, duplicate object, ...
            return self._problem(record, "invalid", f"registration failed: {_first_line(exc)}")
        record.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
        for hook in hookspecs.WRAP_ONLY_HOOKS:
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                if impl.plugin_name == name and not (impl.wrapper or impl.hookwrapper):
                    return self._problem(record, "invalid", f"implements {hook} without wrapper=True: a plugin may "
                                                            "only wrap a step (the step itself is the declaration's impl)")
        self._collect(record)

    def _collect(self, record: PluginRecord) -> None:
        found: dict[str, list[Any]] = {}
        for hook_name, kind in zip(hookspecs.DECLARATION_HOOKS, KINDS):
            cls = KINDS[kind]
            items: list[Any] = []
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != record.name:
                    continue
                try:
                    items.extend(_as_list(impl.function()))
                except DeclarationError as exc:
                    return self._problem(record, "invalid", f"{hook_name}: {exc}")
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # noqa: BLE001
                    return self._problem(record, "failed", f"{hook_name} raised {_first_line(exc)}")
            for item in items:
                if not isinstance(item, cls):
                    return self._problem(record, "invalid",
                                         f"{hook_name} yielded {type(item).__name__}, expected {cls.__name__}")
            names = [norm(i.name) for i in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                return self._problem(record, "invalid", f"declares {kind} {dup[0]!r} twice")
            found[kind] = items
        for kind, items in found.items():
            for item in items:
                self.decls[kind].setdefault(norm(item.name), []).append(Declared(item, record.ref))
                record.provides.append(f"{kind}:{item.name}")

    def finish(self, registry_cls: type[Registry] = Registry) -> Registry:
        unique, contested = contest_duplicates(self.decls)
        if contested and self.strict:
            (kind, key), contenders = next(iter(contested.items()))
            from omni.registry import contest_message

            raise PluginError(contest_message(kind, contenders[0].spec.name, contenders))
        reg = registry_cls(pm=self.pm, plugins=sorted(self.records, key=lambda r: r.name),
                           families=dict(sorted(unique["family"].items())),
                           optimizations=dict(sorted(unique["optimization"].items())),
                           models=dict(sorted(unique["model"].items())),
                           presets=dict(sorted(unique["preset"].items())), contested=contested)
        reg.findings.extend(self.warnings)
        contested_fams = {k for (kind, k) in contested if kind == "family"}
        for key, declared in list(reg.models.items()):
            family = declared.spec.family
            if family not in reg.families and family not in contested_fams:
                del reg.models[key]
                msg = f"model {declared.spec.name!r} names unknown family {family!r} (model dropped)"
                reg.findings.append(f"plugin {declared.plugin.name!r}: {msg}")
                if self.strict:
                    raise PluginError(f"plugin {declared.plugin.name!r}: {msg}")
        derive_family_traits(reg, resolve)
        check_references(reg)
        return reg


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
    from omni.runtime import steps  # the core's innermost omni_step (no torch import)

    loader.pm.register(steps, name=CORE_PLUGIN)
    for name, ep, dist, version in _entry_points(path):
        why = selection.why_blocked(ep.name, dist)
        if why:
            loader.records.append(PluginRecord(name, dist, version, "disabled", error=why))
            continue
        loader.add(name, dist, version, ep.load)
    for name, obj in extra:
        if selection.why_blocked(name, name) is None:
            loader.add(name, "<in-process>", "0", (lambda held: lambda: held)(obj))
    return loader.finish()


_CACHED: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry (loaded on first use)."""
    global _CACHED
    if _CACHED is None:
        _CACHED = load_registry()
    return _CACHED


def set_registry(registry: Registry | None) -> None:
    """Install a registry for this process (CLI flags, tests); None reloads on next use."""
    global _CACHED
    _CACHED = registry
