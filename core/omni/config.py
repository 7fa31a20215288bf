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

from omni.errors import ConfigError
from omni.names import did_you_mean
from omni.options import parse_bool
from omni.registry import Registry
from omni.specs import ConfigKey, OptimizationSpec

RESERVED = ("optimize", "preset", "config", "strict", "disable", "metadata")
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
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)  # the ignored ``metadata:`` section

    def to_json(self) -> dict[str, Any]:
        return {
            "raw": self.raw,
            "preset": self.preset,
            "strict": self.strict,
            "requested": {k: {"options": v, "requested_by": self.requested_by.get(k)} for k, v in self.requested.items()},
            "disabled": self.disabled,
            "notes": self.notes,
        }


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(f"config key {key!r} is not a string")
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and full not in ("optimize",) and not full.startswith("optimize"):
            out.update(flatten(value, f"{full}."))
        else:
            out[full] = value
    return out


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": "1", "b.c": "x"}`` (values stay strings; options coerce them)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def load_yaml(path: str) -> dict[str, Any]:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def _truthy(key: str, value: Any) -> bool:
    try:
        return parse_bool(value)
    except ValueError as exc:
        raise ConfigError(f"config key {key}: {exc}") from None


class _Resolver:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.keys: dict[str, list[tuple[ConfigKey, OptimizationSpec]]] = {}
        self.qualifiers: set[str] = set()
        for declared in registry.optimizations.values():
            for ck in declared.spec.config_keys:
                self.keys.setdefault(ck.key, []).append((ck, declared.spec))
                self.qualifiers.update(ck.requires)

    def valid_keys(self) -> list[str]:
        dotted = [f"{d.spec.name}.{o.name}" for d in self.registry.optimizations.values() for o in d.spec.options]
        return sorted(set(self.keys) | self.qualifiers | set(RESERVED)) + dotted

    def applicable(self, key: str, flat: Mapping[str, Any]) -> list[tuple[ConfigKey, OptimizationSpec]]:
        out = []
        for ck, spec in self.keys.get(key, []):
            ok = all(
                (flat.get(q, _ABSENT) is _ABSENT and None in allowed) or str(flat.get(q, _ABSENT)) in map(str, allowed)
                for q, allowed in ck.requires.items()
            )
            if ok:
                out.append((ck, spec))
        return out


def _set_option(cfg: RunConfig, spec: OptimizationSpec, option: str, value: Any, key: str,
                options: dict[str, dict[str, Any]]) -> None:
    try:
        coerced = spec.option(option).coerce(value)
    except KeyError:
        raise ConfigError(
            f"config key {key}: {spec.name} has no option {option!r}"
            f"{did_you_mean(option, [o.name for o in spec.options])}"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"config key {key}: {exc}") from None
    options.setdefault(spec.name, {})[option] = coerced


def _optimize_list(value: Any) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if isinstance(value, Mapping):
        value = [{k: v} for k, v in value.items()]
    if not isinstance(value, list):
        raise ConfigError(f"optimize must be a list of names or {{name: options}}, not {type(value).__name__}")
    out = []
    for item in value:
        if isinstance(item, str):
            out.extend((part.strip(), {}) for part in item.split(",") if part.strip())
        elif isinstance(item, Mapping) and len(item) == 1:
            name, opts = next(iter(item.items()))
            if opts is not None and not isinstance(opts, Mapping):
                raise ConfigError(f"optimize: options of {name} must be a mapping")
            out.append((str(name), dict(opts or {})))
        else:
            raise ConfigError(f"optimize: cannot read item {item!r}")
    return out


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
    """Merge file/dict config, ``--optimize`` names, ``--set`` pairs and a preset into a RunConfig."""
    from omni.presets import expand_preset

    data = dict(data or {})
    metadata = data.pop(METADATA, None)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ConfigError(f"{METADATA}: must be a mapping (tools record where a config came from there)")
    nested = data.pop("config", None)
    if nested is not None and not isinstance(nested, Mapping):
        raise ConfigError("config: must be a mapping of keys")
    merged: dict[str, Any] = {**flatten(data), **flatten(dict(nested or {})), **dict(sets or {})}
    file_preset = merged.pop("preset", None)
    preset = preset if preset is not None else file_preset
    strict = strict or _truthy("strict", merged.pop("strict", False))
    cfg = RunConfig(preset=preset, strict=strict, raw=dict(merged), metadata=dict(metadata or {}))
    resolver = _Resolver(registry)
    preset_names: list[str] = []
    if preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"preset must be a name, not {type(preset).__name__}")
        preset_flat, preset_names, notes = expand_preset(preset, registry, family=family, env=env)
        cfg.notes.extend(notes)
        for key, value in preset_flat.items():
            if key in resolver.keys or key in resolver.qualifiers:
                merged.setdefault(key, value)
            else:
                cfg.notes.append(f"preset {preset}: key {key} skipped: no installed plugin provides it")
    names_with_opts: list[tuple[str, dict[str, Any], str]] = []
    if preset is not None:
        names_with_opts += [(n, {}, f"preset {preset}") for n in preset_names]
    names_with_opts += [(n, o, "--optimize") for n, o in _optimize_list(list(optimize))]
    if "optimize" in merged:
        names_with_opts += [(n, o, "optimize") for n, o in _optimize_list(merged.pop("optimize"))]
    disable = merged.pop("disable", None)
    if disable:
        for name in [d for d in (disable.split(",") if isinstance(disable, str) else disable) if str(d).strip()]:
            cfg.disabled[_known(registry, str(name).strip())] = "disable"

    options: dict[str, dict[str, Any]] = {}
    for name, opts, origin in names_with_opts:
        spec = registry.optimization(_known(registry, name)).spec
        cfg.requested.setdefault(spec.name, {})
        cfg.requested_by.setdefault(spec.name, origin)
        for opt_name, value in opts.items():
            _set_option(cfg, spec, opt_name, value, f"{spec.name}.{opt_name}", options)

    for key, value in merged.items():
        if key in resolver.qualifiers and key not in resolver.keys:
            continue
        owner = registry.find("optimization", key.split(".", 1)[0]) if "." in key and key.split(".", 1)[0] else None
        if owner is not None:
            spec = owner.spec
            _set_option(cfg, spec, key.split(".", 1)[1], value, key, options)
            continue
        if key not in resolver.keys:
            raise ConfigError(f"unknown config key {key!r}{did_you_mean(key, resolver.valid_keys())}")
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
                raise ConfigError(f"config key {key}: {value!r} is not one of {', '.join(valid)}")
            for ck, spec in chosen:
                cfg.requested.setdefault(spec.name, {})
                cfg.requested_by.setdefault(spec.name, f"{key}={value}")
                if ck.value_option:
                    _set_option(cfg, spec, ck.value_option, ck.value_map.get(str(value), value), key, options)
        for ck, spec in matches:
            if ck.when:
                continue
            if ck.present and value not in (None, "", [], {}):
                cfg.requested.setdefault(spec.name, {})
                cfg.requested_by.setdefault(spec.name, key)
            if ck.enables and _truthy(key, value):
                cfg.requested.setdefault(spec.name, {})
                cfg.requested_by.setdefault(spec.name, key)
            if ck.disables and _truthy(key, value):
                cfg.disabled[spec.name] = key
            if ck.option:
                _set_option(cfg, spec, ck.option, value, key, options)

    for name, opts in options.items():
        if name in cfg.requested:
            cfg.requested[name].update(opts)
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
        raise ConfigError(f"unknown optimization {name!r}{did_you_mean(name, names)}")
    return declared.spec.name


def names_arg(name: str, value: Any) -> tuple[str, ...]:
    """A list/tuple of names (Python API); a bare string is refused instead of being split into letters."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise ConfigError(f"{name} must be a list of names, e.g. {name}=[{value!r}], not the string {value!r}")
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
            raise ConfigError(f"{name}: key {key!r} is not a string")
