"""The optimization declaration: what it is, how a run applies it (``impl``), which families can take
it (traits, claims), what it needs from the host, and how ``omni verify`` proves it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from omni.errors import DeclarationError
from omni.names import norm
from omni.specs.base import (
    Behaviour,
    Claim,
    ConfigKey,
    Needs,
    Option,
    Stage,
    check_behaviour,
    check_name,
    claims,
    coerce_enum,
    frozen_mapping,
    trait_set,
    traits_map,
)


@dataclass(frozen=True)
class OptimizationSpec:
    """One optimization a plugin provides.

    ``impl`` is the one way a run applies it: an import path or a callable ``impl(ctx, step) ->
    Applied`` (see ``docs/plugin-guide.md`` for the contract).

    ``traits`` declares the traits this plugin introduces (name -> meaning); ``family_traits`` (an
    import path or callable, light: it runs when plugins load) receives ``(family_spec, data)`` where
    ``data`` is ``family.extras[<this name>]`` (an empty mapping for a family without it), validates it
    (raise ``ValueError`` with the reason) and returns the traits the family gains from it (or from the
    plugin's own data about the family, such as calibration files).

    ``order`` sorts optimizations inside a stage (lower first). ``exclusive_group`` makes every
    member of the group conflict with the others ("cache", "offload"). ``conflicts_with`` adds named
    conflicts with a reason. ``places_pipeline=True`` marks optimizations that manage device
    placement themselves (offload). ``tolerance_psnr`` is the PSNR floor (dB) ``omni verify``
    accepts for lossy optimizations; lossless ones must match within 1e-4. ``verify_overrides`` and
    ``verify_generation`` are the option values and generation arguments ``omni verify`` uses on tiny
    models; ``verify_prepare`` (``fn(model_name, workdir) -> options``) computes model-dependent ones.

    Example::

        OptimizationSpec(
            name="vae_tiling", stage=Stage.DECODE, lossless=False, tolerance_psnr=20.0,
            summary="decode the latent in overlapping tiles (lower peak memory)",
            options=(Option("tile_size", "int", 0, "0 = the VAE's default", min=0),),
            config_keys=(ConfigKey("enable_vae_tiling", enables=True),),
            requires_traits={"vae:tiling"},
            impl="omni_plugin_vae.impl:tiling")
    """

    name: str
    stage: Stage
    summary: str
    lossless: bool
    impl: Behaviour
    options: tuple[Option, ...] = ()
    config_keys: tuple[ConfigKey, ...] = ()
    requires_traits: frozenset[str] = frozenset()
    trait_hints: Mapping[str, str] = field(default_factory=dict)
    traits: Mapping[str, str] = field(default_factory=dict)
    family_traits: Behaviour | None = None
    claims: Mapping[str, Claim] = field(default_factory=dict)
    exclusive_group: str | None = None
    conflicts_with: Mapping[str, str] = field(default_factory=dict)
    needs: Needs = field(default_factory=Needs)
    order: int = 100
    places_pipeline: bool = False
    tolerance_psnr: float | None = None
    verify_overrides: Mapping[str, Any] = field(default_factory=dict)
    verify_generation: Mapping[str, Any] = field(default_factory=dict)
    verify_prepare: Behaviour | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name("OptimizationSpec", self.name))
        where = f"OptimizationSpec {self.name!r}"
        object.__setattr__(self, "stage", coerce_enum(Stage, self.stage, f"{where}: stage"))
        if not isinstance(self.lossless, bool):
            raise DeclarationError(f"{where}: lossless must be True or False")
        check_behaviour(f"{where}: impl", self.impl, optional=False)
        check_behaviour(f"{where}: family_traits", self.family_traits)
        check_behaviour(f"{where}: verify_prepare", self.verify_prepare)
        if isinstance(self.options, (str, Option)) or isinstance(self.config_keys, (str, ConfigKey)):
            raise DeclarationError(f"{where}: options and config_keys must be tuples (a missing comma?)")
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "config_keys", tuple(self.config_keys))
        object.__setattr__(self, "requires_traits", trait_set(f"{where}: requires_traits", self.requires_traits))
        object.__setattr__(self, "trait_hints", frozen_mapping(f"{where}: trait_hints", self.trait_hints))
        for trait in self.trait_hints:
            if trait not in self.requires_traits:
                raise DeclarationError(f"{where}: trait_hints names {trait!r}, which is not required")
        object.__setattr__(self, "traits", traits_map(f"{where}: traits", self.traits))
        if self.traits and self.family_traits is None:
            raise DeclarationError(f"{where}: declares traits but no family_traits to derive them")
        object.__setattr__(self, "claims", claims(where, self.claims))
        conflicts = frozen_mapping(f"{where}: conflicts_with", self.conflicts_with)
        object.__setattr__(self, "conflicts_with", MappingProxyType({norm(k): v for k, v in conflicts.items()}))
        if self.exclusive_group is not None:
            check_name(f"{where}: exclusive_group", self.exclusive_group)
        object.__setattr__(self, "verify_overrides", frozen_mapping(f"{where}: verify_overrides",
                                                                    self.verify_overrides))
        object.__setattr__(self, "verify_generation", frozen_mapping(f"{where}: verify_generation",
                                                                     self.verify_generation))
        if not self.summary or not isinstance(self.summary, str):
            raise DeclarationError(f"{where} needs a summary")
        if not isinstance(self.needs, Needs):
            raise DeclarationError(f"{where}: needs must be a Needs")
        if not isinstance(self.order, int) or isinstance(self.order, bool):
            raise DeclarationError(f"{where}: order must be an integer")
        seen = set()
        for opt in self.options:
            if not isinstance(opt, Option):
                raise DeclarationError(f"{where}: options must be Option objects")
            if opt.name in seen:
                raise DeclarationError(f"{where}: option {opt.name!r} declared twice")
            seen.add(opt.name)
        for key in self.config_keys:
            if not isinstance(key, ConfigKey):
                raise DeclarationError(f"{where}: config_keys must be ConfigKey objects")
            for target in (key.option, key.value_option):
                if target is not None and target not in seen:
                    raise DeclarationError(f"{where}: config key {key.key!r} targets unknown option {target!r}")
        for name in self.verify_overrides:
            if name not in seen:
                raise DeclarationError(f"{where}: verify_overrides names unknown option {name!r}")
        if not self.lossless and self.tolerance_psnr is None:
            raise DeclarationError(f"{where} is lossy and must declare tolerance_psnr")

    def option(self, name: str) -> Option:
        for opt in self.options:
            if opt.name == name:
                return opt
        raise KeyError(name)

    @property
    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}

    @property
    def per_request_options(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options if o.per_request)
