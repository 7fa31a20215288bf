"""How config keys reach the options plugins declare: the index of every ``ConfigKey`` (which
optimization a key selects or sets, which keys qualify others) and the store of option values that
keeps where each came from — one option, one value (docs/config.md, "Precedence and conflicts")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omni.errors import ConfigError
from omni.names import did_you_mean
from omni.options import shown
from omni.registry import Registry
from omni.specs import ConfigKey, OptimizationSpec

RESERVED = ("optimize", "preset", "config", "strict", "disable", "metadata", "allow_pickle")
_ABSENT = object()


class KeyIndex:
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

    def is_section(self, key: str) -> bool:
        """``cache_config`` (keys ``cache_config.*`` exist) or an optimization name (``teacache.*``)."""
        return any(k.startswith(f"{key}.") for k in self.valid_keys())

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

    def check_qualifiers(self, merged: Mapping[str, Any], labels: Mapping[str, str]) -> None:
        """A qualifier (``quantization_backend``) with none of the keys it qualifies does nothing: refused."""
        for q in sorted(self.qualifiers - set(self.keys)):
            if q not in merged:
                continue
            dependents = sorted({ck.key for entries in self.keys.values() for ck, _ in entries if q in ck.requires})
            if not any(k in merged for k in dependents):
                raise ConfigError(f"config key {q} has no effect without {' or '.join(dependents)} "
                                  f"({labels.get(q, q)} alone selects nothing)")


class OptionValues:
    """Option values and where each came from: one option, one value. Two different explicit values
    are an error naming both; a preset's value yields to an explicit one (with a note)."""

    def __init__(self, notes: list[str]) -> None:
        self.values: dict[str, dict[str, tuple[Any, str, bool]]] = {}
        self.notes = notes

    def set(self, spec: OptimizationSpec, option: str, value: Any, key: str, label: str, *,
            preset: bool = False) -> None:
        try:
            coerced = spec.option(option).coerce(value)
        except KeyError:
            hint = did_you_mean(option, [o.name for o in spec.options if o.name != option])
            raise ConfigError(f"config key {key}: {spec.name} has no option {shown(option)}{hint}") from None
        except ValueError as exc:
            raise ConfigError(f"config key {key}: {exc}") from None
        current = self.values.setdefault(spec.name, {}).get(option)
        if current is None or current[0] == coerced:
            self.values[spec.name].setdefault(option, (coerced, label, preset))
            return
        old, old_label, old_preset = current
        if preset or old_preset:
            kept, dropped = (old_label, label) if preset else (label, old_label)
            self.notes.append(f"{spec.name}.{option}: {kept} is used; the preset's {dropped} is not")
            if old_preset and not preset:
                self.values[spec.name][option] = (coerced, label, preset)
            return
        raise ConfigError(f"{spec.name}.{option} is set twice with different values: {old_label} and {label}; "
                          "give it once")

    def of(self, name: str) -> dict[str, Any]:
        return {option: v[0] for option, v in self.values.get(name, {}).items()}
