"""What ``omni tune`` may try for a model on this host: the optimizations the matrix lets run
(supported cells; untested ones only when asked), each optimization's speed/quality knob (an option
declared ``faster=``) with the grid of values it is searched on, and candidates — sets of
optimizations the matrix can plan together (exclusive groups and ``conflicts_with`` respected: never
two step caches)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from omni.sdk import Environment, UsageError, matrix


@dataclass(frozen=True)
class Knob:
    """An option declared ``faster=``: its values, ordered from slowest (best quality) to fastest."""

    optimization: str
    option: str
    per_request: bool
    grid: tuple[Any, ...]

    @property
    def key(self) -> str:
        return f"{self.optimization}.{self.option}"


@dataclass(frozen=True)
class Choice:
    name: str
    lossless: bool
    knob: Knob | None


@dataclass(frozen=True)
class Candidate:
    """A configuration to measure: optimizations (with their knob values) or, for comparisons, any
    config mapping (a preset). ``strict`` candidates must apply exactly as asked; a preset is measured
    as users get it."""

    names: tuple[str, ...] = ()
    knobs: tuple[tuple[str, Any], ...] = ()  # ("teacache.rel_l1_thresh", 0.4), sorted
    extra: tuple[tuple[str, Any], ...] = ()  # a raw config (presets), sorted
    label_override: str | None = None

    @property
    def strict(self) -> bool:
        return not self.extra

    @property
    def label(self) -> str:
        if self.label_override:
            return self.label_override
        if not self.names:
            return "baseline"
        values = dict(self.knobs)
        parts = []
        for name in self.names:
            mine = [f"{k.split('.', 1)[1]}={v}" for k, v in values.items() if k.split(".", 1)[0] == name]
            parts.append(f"{name}({', '.join(mine)})" if mine else name)
        return " + ".join(parts)

    def with_choice(self, choice: Choice, value: Any = None) -> Candidate:
        knobs = dict(self.knobs)
        if choice.knob is not None:
            knobs[choice.knob.key] = choice.knob.grid[0] if value is None else value
        return Candidate(tuple(dict.fromkeys((*self.names, choice.name))), tuple(sorted(knobs.items())))

    def with_knob(self, knob: Knob, value: Any) -> Candidate:
        knobs = dict(self.knobs)
        knobs[knob.key] = value
        return Candidate(self.names, tuple(sorted(knobs.items())))

    def config(self, knobs: dict[str, Knob] | None = None, *, per_request: bool = True) -> dict[str, Any]:
        """The config mapping (``omni run --config``): ``{"optimize": [name | {name: {option: value}}]}``.
        With ``per_request=False`` the values of per-request knobs are left out (they travel with each
        request, so candidates differing only there share one load)."""
        if self.extra:
            return dict(self.extra)
        options: dict[str, dict[str, Any]] = {}
        for key, value in self.knobs:
            knob = (knobs or {}).get(key)
            if not per_request and knob is not None and knob.per_request:
                continue
            name, option = key.split(".", 1)
            options.setdefault(name, {})[option] = value
        return {"optimize": [{n: options[n]} if n in options else n for n in self.names]}

    def request_options(self, knobs: dict[str, Knob]) -> dict[str, Any]:
        return {k: v for k, v in self.knobs if k in knobs and knobs[k].per_request}

    def key(self) -> str:
        """Identity of a measurement: what was loaded and what each request set."""
        return json.dumps({"names": list(self.names), "knobs": [list(k) for k in self.knobs],
                           "extra": [list(e) for e in self.extra]}, sort_keys=True, default=str)


def knob_grid(option: Any) -> tuple[Any, ...]:
    """Values around the default, slowest first: x2 steps from default/4 to default*16 for floats,
    x sqrt(2) steps from default/2 to default*4 for integers, clipped to the declared range."""
    lo = option.min if option.min is not None else (0 if option.type == "int" else 0.0)
    hi = option.max
    d = option.default
    if option.type == "float":
        base = d if d > 0 else 0.05
        values = [round(base * 2.0 ** k, 6) for k in range(-2, 5)]
    else:
        base = d if d > 0 else 1
        values = [int(round(base * 2 ** (k / 2))) for k in range(-2, 5)]
    values = sorted({v for v in values if v >= lo and (hi is None or v <= hi) and v > 0})
    return tuple(values if option.faster == "higher" else reversed(values))


@dataclass
class Space:
    """The choices of one model on this host and why the rest were left out."""

    family: str
    choices: list[Choice]
    left_out: list[tuple[str, str]] = field(default_factory=list)
    matrix: Any = None

    @property
    def knobs(self) -> dict[str, Knob]:
        return {c.knob.key: c.knob for c in self.choices if c.knob is not None}

    def choice(self, name: str) -> Choice:
        return next(c for c in self.choices if c.name == name)

    def conflict(self, names: tuple[str, ...]) -> str | None:
        """Why these optimizations cannot be planned together (the matrix's plan), or None."""
        plan = self.matrix.plan(self.family, list(names))
        clash = [s for s in plan.skipped if s.status == "conflict"]
        return f"{clash[0].name}: {'; '.join(clash[0].reasons)}" if clash else None


def build_space(registry: Any, family: str, *, only: list[str], exclude: list[str], include_untested: bool,
                lossless_only: bool) -> Space:
    """Every optimization whose cell is supported for ``family`` on this host (``untested`` too with
    ``include_untested``), minus ``exclude``, limited to ``only`` when given."""
    mat = matrix(registry, Environment.detect())
    known = set(mat.optimization_names)
    for name in (*only, *exclude):
        if name not in known:
            raise UsageError(f"--only/--exclude: no optimization named {name!r} (omni matrix lists them)")
    space = Space(family, [], matrix=mat)
    allowed = {"supported", "untested"} if include_untested else {"supported"}
    for name in mat.optimization_names:
        spec = registry.optimization(name).spec
        cell = mat.cell(family, name)
        if only and name not in only:
            continue
        if name in exclude:
            space.left_out.append((name, "excluded (--exclude)"))
        elif cell.status.value not in allowed:
            hint = " (--include-untested tries it)" if cell.status.value == "untested" else ""
            space.left_out.append((name, f"{cell.status.value}: {'; '.join(cell.reasons[:1])}{hint}"))
        elif lossless_only and not spec.lossless:
            space.left_out.append((name, "lossy, and the quality floor is lossless"))
        else:
            faster = [o for o in spec.options if o.faster]
            knob = Knob(name, faster[0].name, faster[0].per_request, knob_grid(faster[0])) if faster else None
            space.choices.append(Choice(name, spec.lossless, knob))
    return space
