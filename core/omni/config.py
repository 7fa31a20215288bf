"""The config surface: seed keys, vLLM-Omni keys and omni's own ``optimize:`` list, mapped onto
optimization options declared by plugins (the mapping lives in each plugin's ``ConfigKey``s).

Accepted shapes (YAML file, ``--set KEY=VALUE``, Python dict), all merged into one flat mapping:

* flat keys: ``enable_vae_tiling: true``, ``tea_cache_ratio: 0.3``, ``quantization: int8``;
* a ``config:`` section holding the same (seed 000 style);
* nested dicts are flattened with dots: ``cache_config: {rel_l1_thresh: 0.2}`` ->
  ``cache_config.rel_l1_thresh``;
* ``optimize: [teacache, {vae_tiling: {tile_size: 256}}]`` (or ``"teacache,vae_tiling"``);
* ``<optimization>.<option>`` for any declared option: ``teacache.rel_l1_thresh: 0.3``;
* ``preset: vram-first`` (explicit keys win over the preset);
* ``metadata:`` a mapping the config surface ignores, where tools record where a config came from
  (``omni tune`` writes its measurements there). One part is read: ``metadata.device``
  (``{kind: cpu|cuda, name: ...}``, the report's ``environment.device``/``device_name``); a run on
  another device gets a note saying the config was tuned elsewhere (:func:`device_note`).

Unknown keys and bad values raise :class:`ConfigError` with one line naming the key and the
closest valid keys. Nothing is silently ignored: a key that only sets an option of an optimization
that was not requested becomes a note in the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from omni.config_file import load_yaml, parse_set, python_children, shape
from omni.errors import ConfigError
from omni.names import did_you_mean
from omni.options import parse_bool, shown
from omni.config_keys import KeyIndex, OptionValues
from omni.registry import Registry

__all__ = ["RunConfig", "resolve_config", "load_yaml", "parse_set", "names_arg", "mapping_arg", "device_note"]
METADATA = "metadata"
_ABSENT = object()


@dataclass
class RunConfig:
    """The resolved request: which optimizations, with which options, and where each came from."""

    requested: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> options (declared order kept)
    requested_by: dict[str, str] = field(default_factory=dict)  # name -> the key that asked for it
    disabled: dict[str, str] = field(default_factory=dict)  # name -> the key that disabled it
    preset: str | None = None
    strict: bool = False
    allow_pickle: bool = False  # weights in pickle files (.bin/.pt) may load: the user opted in
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)  # the ignored ``metadata:`` section

    def to_json(self) -> dict[str, Any]:
        return {
            "raw": self.raw,
            "preset": self.preset,
            "strict": self.strict,
            "allow_pickle": self.allow_pickle,
            "requested": {k: {"options": v, "requested_by": self.requested_by.get(k)} for k, v in self.requested.items()},
            "disabled": self.disabled,
            "notes": self.notes,
        }


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{a: {b: 1}}`` -> ``{"a.b": 1}``; ``optimize:`` keeps its mapping form. An empty mapping stays
    a value (``enable_vae_tilling: {}`` is an unknown key, not nothing)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            where = f" in {prefix[:-1]}" if prefix else ""
            raise ConfigError(f"config key {shown(key)}{where} is not a string")
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and full != "optimize":
            out.update(flatten(value, f"{full}."))
        else:
            out[full] = value
    return out


def _same(a: Any, b: Any) -> bool:
    """Two raw values that say the same thing (``0.2`` in YAML and ``"0.2"`` from ``--set``)."""
    return a == b or (not isinstance(a, (Mapping, list)) and str(a).strip().lower() == str(b).strip().lower())


def _merge(layers: Iterable[tuple[str, Mapping[str, Any]]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge flat layers (``where`` prefixes the label: ``config.``, ``--set ``) into one mapping and the
    label each key came from; the same key with two different values is an error naming both."""
    merged: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for where, flat in layers:
        for key, value in flat.items():
            label = f"{where}{key}={shown(value)}"
            if key in merged and not _same(merged[key], value):
                raise ConfigError(f"{key} is given twice with different values: {labels[key]} and {label}; "
                                  "give it once")
            merged.setdefault(key, value)
            labels.setdefault(key, label)
    return merged, labels


def _truthy(key: str, value: Any) -> bool:
    try:
        return parse_bool(value)
    except ValueError as exc:
        raise ConfigError(f"config key {key}: {exc}") from None


def _flag(name: str, argument: bool, merged: dict[str, Any], labels: dict[str, str], how: str) -> bool:
    """A reserved true/false key (``strict``, ``allow_pickle``) that may also come as an argument: an
    explicit ``false`` in the config against the argument's ``true`` is a conflict, not overridden."""
    if name not in merged:
        return argument
    value = _truthy(name, merged.pop(name))
    if argument and not value:
        raise ConfigError(f"{name} is given twice with different values: {labels[name]} and {how}; give it once")
    return argument or value


def _suggest(registry: Registry, name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean ...?)`` without ``name`` itself, or the disabled plugin that may own ``name``."""
    from omni.resolve import disabled_owner

    owner = disabled_owner(registry, name)
    if owner:
        return f" ({owner})"
    return did_you_mean(name, [c for c in candidates if c != name])


def _optimize_list(value: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if isinstance(value, Mapping):
        value = [{k: v} for k, v in value.items()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} must be a list of names or {{name: options}}, not {type(value).__name__}")
    out: list[tuple[str, dict[str, Any]]] = []
    for item in value:
        if isinstance(item, str):
            out.extend((part.strip(), {}) for part in item.split(",") if part.strip())
        elif isinstance(item, Mapping) and len(item) == 1:
            name, opts = next(iter(item.items()))
            if not isinstance(name, str):
                raise ConfigError(f"{where}: {shown(name)} is not an optimization name")
            if opts is not None and not isinstance(opts, Mapping):
                raise ConfigError(f"{where}: options of {name} must be a mapping, not {shown(opts)}")
            bad = next((k for k in (opts or {}) if not isinstance(k, str)), _ABSENT)
            if bad is not _ABSENT:
                raise ConfigError(f"{where}: option name {shown(bad)} of {name} is not a string")
            out.append((name, dict(opts or {})))
        else:
            raise ConfigError(f"{where}: cannot read item {shown(item)} (a name or {{name: options}})")
    return out


def _disable_list(value: Any) -> list[str]:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"disable must be a list of optimization names, not {shown(value)}")
    return [n.strip() for n in names if n.strip()]


def resolve_config(
    registry: Registry,
    data: Mapping[str, Any] | None = None,
    *,
    optimize: Iterable[str] = (),
    sets: Mapping[str, Any] | None = None,
    preset: str | None = None,
    strict: bool = False,
    family: str | None = None,
    env: Any = None,
) -> RunConfig:
    """Merge file/dict config, ``--optimize`` names, ``--set`` pairs and a preset into a RunConfig
    (rules: docs/config.md, "Precedence and conflicts")."""
    from omni.presets import expand_preset

    mapping_arg("config", data)
    mapping_arg("sets", sets)
    shape(data or {}, python_children, "the config")
    shape(sets or {}, python_children, "--set")
    data = dict(data or {})
    metadata = data.pop(METADATA, None)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ConfigError(f"{METADATA}: must be a mapping (tools record where a config came from there)")
    nested = data.pop("config", None)
    if nested is not None and not isinstance(nested, Mapping):
        raise ConfigError(f"config: must be a mapping of keys, not {shown(nested)}")
    merged, labels = _merge([("", flatten(data)), ("config.", flatten(dict(nested or {}))),
                             ("--set ", dict(sets or {}))])
    file_preset = merged.pop("preset", None)
    if preset is not None and file_preset is not None and not _same(preset, file_preset):
        raise ConfigError(f"preset is given twice with different values: --preset {shown(preset)} and "
                          f"{labels['preset']}; give it once")
    preset = preset if preset is not None else file_preset
    strict = _flag("strict", bool(strict), merged, labels, "--strict")
    allow_pickle = _flag("allow_pickle", False, merged, labels, "")
    cfg = RunConfig(preset=preset, strict=strict, allow_pickle=allow_pickle, raw=dict(merged),
                    metadata=dict(metadata or {}))
    resolver = KeyIndex(registry)
    resolver.check_qualifiers(merged, labels)
    from_preset: set[str] = set()
    preset_names: list[str] = []
    if preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"preset must be a name, not {type(preset).__name__}")
        preset_flat, preset_names, notes = expand_preset(preset, registry, family=family, env=env)
        cfg.notes.extend(notes)
        for key, value in preset_flat.items():
            if key not in resolver.keys and key not in resolver.qualifiers:
                cfg.notes.append(f"preset {preset}: key {key} skipped: no installed plugin provides it")
            elif key in merged:
                if not _same(merged[key], value):
                    cfg.notes.append(f"preset {preset}'s {key}={shown(value)} is not used: {labels[key]} is")
            else:
                merged[key], labels[key] = value, f"preset {preset}: {key}={shown(value)}"
                from_preset.add(key)
    options = OptionValues(cfg.notes)
    explicit: set[str] = set()

    def request(name: str, by: str, *, preset_only: bool = False) -> None:
        cfg.requested.setdefault(name, {})
        cfg.requested_by.setdefault(name, by)
        if not preset_only:
            explicit.add(name)

    names_with_opts: list[tuple[str, dict[str, Any], str]] = []
    if preset is not None:
        names_with_opts += [(n, {}, f"preset {preset}") for n in preset_names]
    names_with_opts += [(n, o, "--optimize") for n, o in _optimize_list(list(optimize), "--optimize")]
    if "optimize" in merged:
        names_with_opts += [(n, o, "optimize") for n, o in _optimize_list(merged.pop("optimize"), "optimize")]
    for name in _disable_list(merged.pop("disable", None) or []):
        cfg.disabled[_known(registry, name)] = "disable"

    for name, opts, origin in names_with_opts:
        spec = registry.optimization(_known(registry, name)).spec
        request(spec.name, origin, preset_only=origin.startswith("preset "))
        for opt_name, value in opts.items():
            options.set(spec, opt_name, value, f"{spec.name}.{opt_name}", f"{origin}: {spec.name}.{opt_name}="
                        f"{shown(value)}")

    declined: dict[str, str] = {}
    for key, value in merged.items():
        label, by_preset = labels[key], key in from_preset
        if key in resolver.qualifiers and key not in resolver.keys:
            continue
        head, dot, tail = key.partition(".")
        owner = registry.find("optimization", head) if dot and head else None
        if owner is not None:
            options.set(owner.spec, tail, value, key, label, preset=by_preset)
            continue
        if key not in resolver.keys:
            if isinstance(value, Mapping) and not value and resolver.is_section(key):
                cfg.notes.append(f"config section {key} is empty: it sets nothing")
                continue
            raise ConfigError(f"unknown config key {shown(key)}{_suggest(registry, key, resolver.valid_keys())}")
        matches = resolver.applicable(key, merged)
        if not matches:
            needs = "; ".join(
                f"{spec.name} needs " + ", ".join(f"{q} in {list(v)}" for q, v in ck.requires.items())
                for ck, spec in resolver.keys[key]
            )
            raise ConfigError(f"config key {key} does not apply here ({needs})")
        selecting = [(ck, spec) for ck, spec in matches if ck.when]
        if selecting:
            chosen = [(ck, spec) for ck, spec in selecting if str(value) in map(str, ck.when)]
            if not chosen:
                valid = sorted({w for ck, _ in selecting for w in ck.when})
                raise ConfigError(f"config key {key}: {shown(value)} is not one of {', '.join(valid)}")
            for ck, spec in chosen:
                request(spec.name, label, preset_only=by_preset)
                if ck.value_option:
                    options.set(spec, ck.value_option, ck.value_map.get(str(value), value), key, label,
                                preset=by_preset)
        for ck, spec in matches:
            if ck.when:
                continue
            if ck.present and value not in (None, "", [], {}):
                request(spec.name, key, preset_only=by_preset)
            if ck.enables:
                if _truthy(key, value):
                    request(spec.name, key, preset_only=by_preset)
                elif not by_preset:
                    declined[spec.name] = label
            if ck.disables and _truthy(key, value):
                cfg.disabled[spec.name] = key
            if ck.option:
                options.set(spec, ck.option, value, key, label, preset=by_preset)

    for name, by in declined.items():  # an explicit false is never overridden
        if name not in cfg.requested:
            continue
        if name in explicit:
            raise ConfigError(f"{name} is requested by {cfg.requested_by[name]} and turned off by {by}; "
                              "remove one")
        del cfg.requested[name]
        cfg.notes.append(f"{name} not applied: {by}, although {cfg.requested_by.pop(name)} asks for it")
    for name, opts in options.values.items():
        if name in cfg.requested:
            cfg.requested[name].update(options.of(name))
        else:
            keys = ", ".join(sorted(opts))
            cfg.notes.append(f"options {keys} set for {name}, which was not requested: not used")
    for name in list(cfg.requested):
        if name in cfg.disabled:
            cfg.notes.append(f"{name} requested by {cfg.requested_by[name]} but disabled by {cfg.disabled[name]}")
    return cfg


def device_note(metadata: Mapping[str, Any], environment: Mapping[str, Any]) -> str | None:
    """A note when ``metadata.device`` names another device than the run's ``environment`` (a report's
    ``environment``): the figures a config was chosen by do not carry over to other hardware."""
    tuned = metadata.get("device")
    if not isinstance(tuned, Mapping) or not tuned.get("kind"):
        return None
    here = (environment.get("device"), environment.get("device_name"))
    there = (tuned.get("kind"), tuned.get("name"))
    if here == there:
        return None
    return (f"this config was tuned on {there[0]} ({there[1]}) and runs on {here[0]} ({here[1]}): "
            "the speed and memory it was chosen by were measured elsewhere (run omni tune here to re-measure)")


def _known(registry: Registry, name: str) -> str:
    declared = registry.find("optimization", name)
    if declared is None:
        names = [d.spec.name for d in registry.optimizations.values()]
        raise ConfigError(f"unknown optimization {shown(name)}{_suggest(registry, name, names)}")
    return declared.spec.name


def names_arg(name: str, value: Any) -> tuple[str, ...]:
    """A list/tuple of names (Python API); a bare string is refused instead of being split into letters."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise ConfigError(f"{name} must be a list of names, e.g. {name}=[{shown(value)}], not the string "
                          f"{shown(value)}")
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of names (strings), not {type(value).__name__}")
    return tuple(value)


def mapping_arg(name: str, value: Any) -> None:
    """A mapping of string keys (Python API ``config=`` / ``sets=``), or None."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping of config keys to values, not {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(f"{name}: key {shown(key)} is not a string")
