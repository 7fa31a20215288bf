"""The small declaration types shared by families and optimizations: stages, cell statuses, claims,
options, config keys, environment needs, traits. Plain data; validation in ``__post_init__``
raises :class:`omni.errors.DeclarationError` naming the field."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from omni.errors import DeclarationError
from omni.names import norm

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
PATH_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
TRAIT_RE = re.compile(r"^[a-z][a-z0-9_-]*(:[a-z0-9_-]+)?$")

E = TypeVar("E", bound=enum.Enum)


class Stage(str, enum.Enum):
    """The six stages of a run, in execution order (see ``docs/architecture.md``)."""

    LOAD = "load"
    QUANTIZE = "quantize"
    PLACE = "place"
    CACHE = "cache"
    COMPILE = "compile"
    DECODE = "decode"

    @property
    def rank(self) -> int:
        """Position in execution order (0 = load)."""
        return list(Stage).index(self)


class Support(str, enum.Enum):
    """Status of one matrix cell."""

    SUPPORTED = "supported"  # claimed by a declaration (and verified by ``omni verify``)
    UNSUPPORTED = "unsupported"  # claimed not to work, or a required trait is missing
    UNTESTED = "untested"  # traits match but nobody claims it
    UNAVAILABLE = "unavailable"  # this environment lacks a package / accelerator / capability
    DISABLED = "disabled"  # switched off by the user for this run / process


def coerce_enum(enum_cls: type[E], value: Any, where: str) -> E:
    try:
        return enum_cls(value)
    except ValueError:
        raise DeclarationError(f"{where} {value!r} is not one of {[m.value for m in enum_cls]}") from None


def check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise DeclarationError(f"{kind} name {name!r} must match {NAME_RE.pattern}")
    return name


def check_behaviour(kind: str, value: Any, *, optional: bool = True) -> None:
    """An import path ``"package.module:attribute"`` or a callable (in-process plugins)."""
    if value is None and optional:
        return
    if callable(value):
        return
    if not isinstance(value, str) or not PATH_RE.match(value):
        raise DeclarationError(f"{kind} {value!r} must be a callable or look like 'package.module:attribute'")


def strs(kind: str, value: Any) -> tuple[str, ...]:
    """A tuple of strings; a bare string is refused (``("a-*")`` without its comma is a string)."""
    if isinstance(value, str):
        raise DeclarationError(f"{kind} must be a tuple of strings, not the string {value!r} (a missing comma?)")
    try:
        items = tuple(value)
    except TypeError:
        raise DeclarationError(f"{kind} must be a tuple of strings, not {type(value).__name__}") from None
    for item in items:
        if not isinstance(item, str) or not item:
            raise DeclarationError(f"{kind} must hold non-empty strings, not {item!r}")
    return items


def frozen_mapping(kind: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DeclarationError(f"{kind} must be a mapping, not {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise DeclarationError(f"{kind} keys must be strings, not {key!r}")
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class Claim:
    """An explicit statement that a (family, optimization) pair works or does not.

    Example::

        Claim(Support.UNSUPPORTED, "the last JointTransformerBlock returns no encoder stream")
    """

    status: Support
    reason: str = ""

    def __post_init__(self) -> None:
        status = coerce_enum(Support, self.status, "Claim.status")
        if status not in (Support.SUPPORTED, Support.UNSUPPORTED):
            raise DeclarationError(f"Claim.status must be supported or unsupported, not {status.value!r}")
        object.__setattr__(self, "status", status)
        if status is Support.UNSUPPORTED and not self.reason:
            raise DeclarationError("an unsupported Claim needs a reason")


def supported(reason: str = "") -> Claim:
    """Shorthand: ``supported("verified on tiny-flux")``."""
    return Claim(Support.SUPPORTED, reason)


def unsupported(reason: str) -> Claim:
    """Shorthand: ``unsupported("UNet has no top-level block list")``."""
    return Claim(Support.UNSUPPORTED, reason)


TASK_NAMES = frozenset({"t2i", "i2i", "inpaint", "edit", "t2v", "i2v", "v2v"})


def claims(kind: str, value: Any) -> Mapping[str, Claim]:
    """Claims keyed by a name, or ``name@task`` for a claim that holds for one task only."""
    out = {}
    for key, claim in frozen_mapping(f"{kind}.claims", value).items():
        name, at, task = key.partition("@")
        check_name(f"{kind}.claims key", norm(name))
        if at and task not in TASK_NAMES:
            raise DeclarationError(f"{kind}.claims key {key!r}: task {task!r} is not one of {sorted(TASK_NAMES)}")
        key = norm(name) + (f"@{task}" if at else "")
        if not isinstance(claim, Claim):
            raise DeclarationError(f"{kind}.claims[{key!r}] must be a Claim, got {type(claim).__name__}")
        out[key] = claim
    return MappingProxyType(out)


OPTION_TYPES = frozenset({"bool", "int", "float", "str", "strs", "choice", "floats", "path", "dtype"})


@dataclass(frozen=True)
class Option:
    """A typed option of an optimization.

    ``per_request=True``: a request to a running engine may change it without a reload (the
    step's ``Applied.reconfigure`` applies it).

    ``faster="higher"`` (or ``"lower"``) marks a numeric option as the optimization's speed/quality
    knob: moving it that way buys speed at the cost of quality (a cache threshold). ``omni tune``
    searches such an option for the fastest value that keeps the user's quality floor.

    Example::

        Option("rel_l1_thresh", "float", 0.2, "accumulated error budget", min=0.0, max=5.0, per_request=True,
               faster="higher")
        Option("offload_type", "choice", "block_level", "granularity", choices=("block_level", "leaf_level"))
    """

    name: str
    type: str
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    per_request: bool = False
    faster: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.match(r"^[a-z][a-z0-9_]*$", self.name):
            raise DeclarationError(f"Option name {self.name!r} must be snake_case")
        if self.faster is not None and (self.faster not in ("higher", "lower") or self.type not in ("int", "float")
                                        or self.default is None):
            raise DeclarationError(f"Option {self.name!r}: faster= must be 'higher' or 'lower', on an int or float "
                                   "option with a default")
        if self.type not in OPTION_TYPES:
            raise DeclarationError(f"Option {self.name!r}: type {self.type!r} is not one of {sorted(OPTION_TYPES)}")
        object.__setattr__(self, "choices", strs(f"Option {self.name!r}: choices", self.choices))
        if self.type == "choice" and not self.choices:
            raise DeclarationError(f"Option {self.name!r}: a choice option needs choices")
        if not self.help:
            raise DeclarationError(f"Option {self.name!r} needs a help text")
        if self.default is not None:
            try:
                self.coerce(self.default)
            except ValueError as exc:
                raise DeclarationError(f"Option {self.name!r}: default is invalid: {exc}") from None

    def coerce(self, value: Any) -> Any:
        """Convert ``value`` (a YAML/CLI value) to this option's type, or raise ValueError."""
        from omni.options import coerce_option

        return coerce_option(self, value)


@dataclass(frozen=True)
class ConfigKey:
    """Maps a user config key (OmniRT keys, vLLM-Omni keys) onto this optimization.

    * ``enables=True``: a truthy value selects the optimization (``enable_vae_tiling: true``).
    * ``when=("tea_cache",)``: the key selects the optimization when its value is one of these
      (``cache: tea_cache``); ``value_option`` then receives the value mapped through ``value_map``.
    * ``option="rel_l1_thresh"``: the value sets that option (``tea_cache_ratio: 0.3``).
    * ``disables=True``: a truthy value disables the optimization for the run (``enforce_eager: true``).
    * ``present=True``: any non-empty value requests the optimization (``gguf_path: model.gguf``);
      combine with ``option`` to also pass the value.
    * ``requires={"quantization_backend": ("torchao", None)}``: only applies when another key has one
      of these values (``None`` = the key is absent).

    Example::

        ConfigKey("tea_cache_ratio", option="rel_l1_thresh")
    """

    key: str
    option: str | None = None
    enables: bool = False
    disables: bool = False
    present: bool = False
    when: tuple[str, ...] = ()
    value_option: str | None = None
    value_map: Mapping[str, Any] = field(default_factory=dict)
    requires: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # upper case is allowed after the first letter because upstream keys use it
        # (cache-dit's ``cache_config.Fn_compute_blocks``); keys match case-sensitively
        if not isinstance(self.key, str) or not re.match(r"^[a-z][A-Za-z0-9_.]*$", self.key):
            raise DeclarationError(f"ConfigKey {self.key!r} must be snake_case starting with a lower-case letter "
                                   "(dots for nesting)")
        object.__setattr__(self, "when", strs(f"ConfigKey {self.key!r}: when", self.when))
        object.__setattr__(self, "value_map", frozen_mapping(f"ConfigKey {self.key!r}: value_map", self.value_map))
        requires = frozen_mapping(f"ConfigKey {self.key!r}: requires", self.requires)
        for name, allowed in requires.items():
            if isinstance(allowed, str) or not isinstance(allowed, (tuple, list)):
                raise DeclarationError(f"ConfigKey {self.key!r}: requires[{name!r}] must be a tuple of values")
        object.__setattr__(self, "requires", MappingProxyType({k: tuple(v) for k, v in requires.items()}))
        if not (self.option or self.enables or self.when or self.disables or self.present):
            raise DeclarationError(f"ConfigKey {self.key!r} does nothing: set option, enables, disables or when")

    @property
    def selects(self) -> bool:
        return self.enables or self.present or bool(self.when)


@dataclass(frozen=True)
class Needs:
    """What the environment must provide for an optimization to be available.

    Example::

        Needs(packages=("torchao>=0.15",), accelerator=True, min_compute_capability=(8, 9))
    """

    packages: tuple[str, ...] = ()
    accelerator: bool = False
    min_compute_capability: tuple[int, int] | None = None
    min_devices: int = 1
    min_processes: int = 1

    def __post_init__(self) -> None:
        from packaging.requirements import InvalidRequirement, Requirement

        object.__setattr__(self, "packages", strs("Needs.packages", self.packages))
        for spec in self.packages:
            try:
                Requirement(spec)
            except InvalidRequirement as exc:
                raise DeclarationError(f"Needs.packages: {spec!r} is not a PEP 508 requirement ({exc})") from None
        if self.min_compute_capability is not None:
            cap = tuple(self.min_compute_capability)
            if len(cap) != 2 or not all(isinstance(c, int) for c in cap):
                raise DeclarationError("Needs.min_compute_capability must be (major, minor)")
            object.__setattr__(self, "min_compute_capability", cap)
        if not isinstance(self.min_devices, int) or self.min_devices < 1:
            raise DeclarationError("Needs.min_devices must be an integer >= 1")
        if not isinstance(self.min_processes, int) or self.min_processes < 1:
            raise DeclarationError("Needs.min_processes must be an integer >= 1")

    def describe(self) -> str:
        parts = list(self.packages)
        if self.min_compute_capability:
            parts.append("CUDA compute capability >= %d.%d" % self.min_compute_capability)
        elif self.accelerator:
            parts.append("a CUDA accelerator")
        if self.min_devices > 1:
            parts.append(f"{self.min_devices} devices")
        if self.min_processes > 1:
            parts.append(f"{self.min_processes} processes (torchrun)")
        return ", ".join(parts) or "nothing"


def traits_map(kind: str, value: Any) -> Mapping[str, str]:
    """Traits a plugin introduces: name -> meaning."""
    out = frozen_mapping(kind, value)
    for name, meaning in out.items():
        if not TRAIT_RE.match(name):
            raise DeclarationError(f"{kind}: trait {name!r} must look like 'word' or 'word:value'")
        if not isinstance(meaning, str) or not meaning:
            raise DeclarationError(f"{kind}: trait {name!r} needs a one-line meaning")
    return out


def trait_set(kind: str, value: Any) -> frozenset[str]:
    items = frozenset(strs(kind, value))
    for name in items:
        if not TRAIT_RE.match(name):
            raise DeclarationError(f"{kind}: trait {name!r} must look like 'word' or 'word:value'")
    return items


Behaviour = str | Callable[..., Any]
