"""Named presets come from plugins (``omni_register_presets`` yields ``PresetSpec``s); the kernel
defines none. A preset is config keys and/or optimization names, or an ``expand`` function that
computes them for the model's family on this host."""

from __future__ import annotations

from typing import Any

from omni.behaviour import resolve
from omni.errors import ConfigError
from omni.names import did_you_mean


def expand_preset(name: str, registry: Any, *, family: str | None, env: Any) -> tuple[dict[str, Any], list[str],
                                                                                       list[str]]:
    """-> (flat config keys, optimization names, notes)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("preset: the name is empty (omni presets lists them)")
    declared = registry.find("preset", name)
    if declared is None:
        names = [d.spec.name for d in registry.presets.values()]
        raise ConfigError(f"unknown preset {name!r}{did_you_mean(name, names)} (omni presets lists them)")
    spec = declared.spec
    config, names = dict(spec.config), list(spec.optimize)
    if spec.expand is not None:
        if family is None:
            raise ConfigError(f"preset {spec.name} depends on the model; name one")
        more_config, more_names = resolve(spec.expand)(registry, family, env)
        config.update(more_config)
        names.extend(n for n in more_names if n not in names)
    parts = [f"{k}={v}" for k, v in config.items()] + names
    return config, names, [f"preset {spec.name} expanded to: {', '.join(parts) or 'nothing'}"]
