"""Typed, frozen declarations that plugins yield.

Everything here is plain data: building a declaration never imports torch, diffusers or
transformers, so ``omni plugins`` / ``omni capabilities`` stay fast. Heavy code is referenced by
an import path string (``"package.module:attribute"``) and imported only when a run selects it.

Validation happens in ``__post_init__`` and raises :class:`DeclarationError` with a message that
names the offending field; the plugin manager turns that into an ``invalid`` plugin status.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from omni.errors import DeclarationError
from omni.names import norm

__all__ = [
    "Stage",
    "Support",
    "Claim",
    "Option",
    "ConfigKey",
    "Needs",
    "TeaCacheFacts",
    "FamilyFacts",
    "FamilySpec",
    "OptimizationSpec",
    "ModelSpec",
    "supported",
    "unsupported",
]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
_PATH_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class Stage(str, enum.Enum):
    """The six stages of a run, in execution order (see ``docs/architecture.md``)."""

    LOAD = "load"
    QUANTIZE = "quantize"
    PLACE = "place"
    CACHE = "cache"
    COMPILE = "compile"
    DECODE = "decode"

    @property
    def index(self) -> int:
        return list(Stage).index(self)


class Support(str, enum.Enum):
    """Status of one matrix cell."""

    SUPPORTED = "supported"  # claimed by a declaration (and verified by ``omni verify``)
    UNSUPPORTED = "unsupported"  # claimed not to work, or a required trait is missing
    UNTESTED = "untested"  # traits match but nobody claims it
    UNAVAILABLE = "unavailable"  # this environment lacks a package / accelerator / capability
    DISABLED = "disabled"  # switched off by the user for this run / process


@dataclass(frozen=True)
class Claim:
    """An explicit statement that a (family, optimization) pair works or does not.

    Example::

        Claim(Support.UNSUPPORTED, "the last JointTransformerBlock returns no encoder stream")
    """

    status: Support
    reason: str = ""

    def __post_init__(self) -> None:
        status = _coerce_enum(Support, self.status, "Claim.status")
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


_OPTION_TYPES = {"bool", "int", "float", "str", "strs", "choice", "floats", "path", "dtype"}


@dataclass(frozen=True)
class Option:
    """A typed option of an optimization.

    Example::

        Option("rel_l1_thresh", "float", 0.2, "accumulated error budget", min=0.0, max=5.0)
        Option("offload_type", "choice", "block_level", "granularity",
               choices=("block_level", "leaf_level"))
    """

    name: str
    type: str
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z][a-z0-9_]*$", self.name or ""):
            raise DeclarationError(f"Option name {self.name!r} must be snake_case")
        if self.type not in _OPTION_TYPES:
            raise DeclarationError(f"Option {self.name!r}: type {self.type!r} is not one of {sorted(_OPTION_TYPES)}")
        object.__setattr__(self, "choices", tuple(self.choices))
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
    """Maps a user config key (seed keys, vLLM-Omni keys) onto this optimization.

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
        ConfigKey("quantization", when=("int8", "fp8", "nf4"), value_option="scheme",
                  value_map={"int8": "int8_weight_only", "fp8": "fp8_weight_only", "nf4": "nf4"},
                  requires={"quantization_backend": ("torchao", None)})
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
        if not re.match(r"^[a-z][A-Za-z0-9_.]*$", self.key or ""):
            raise DeclarationError(f"ConfigKey {self.key!r} must be snake_case starting with a lower-case letter "
                                   "(dots for nesting)")
        object.__setattr__(self, "when", tuple(self.when))
        object.__setattr__(self, "value_map", MappingProxyType(dict(self.value_map)))
        object.__setattr__(self, "requires", MappingProxyType({k: tuple(v) for k, v in dict(self.requires).items()}))
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

    def __post_init__(self) -> None:
        from packaging.requirements import InvalidRequirement, Requirement

        object.__setattr__(self, "packages", tuple(self.packages))
        for spec in self.packages:
            try:
                Requirement(spec)
            except InvalidRequirement as exc:
                raise DeclarationError(f"Needs.packages: {spec!r} is not a PEP 508 requirement ({exc})") from None
        if self.min_compute_capability is not None:
            object.__setattr__(self, "min_compute_capability", tuple(self.min_compute_capability))
            if len(self.min_compute_capability) != 2:
                raise DeclarationError("Needs.min_compute_capability must be (major, minor)")
        if self.min_devices < 1:
            raise DeclarationError("Needs.min_devices must be >= 1")

    def describe(self) -> str:
        parts = list(self.packages)
        if self.min_compute_capability:
            parts.append("CUDA compute capability >= %d.%d" % self.min_compute_capability)
        elif self.accelerator:
            parts.append("a CUDA accelerator")
        if self.min_devices > 1:
            parts.append(f"{self.min_devices} devices")
        return ", ".join(parts) or "nothing"


@dataclass(frozen=True)
class TeaCacheFacts:
    """Where TeaCache probes the denoiser and how the probe change is rescaled.

    ``probe`` names the probe point understood by the TeaCache plugin (e.g. ``"flux-norm1"``);
    ``coefficients`` is a degree-4 polynomial, highest power first, or empty when none is published.

    Example::

        TeaCacheFacts(probe="flux-norm1",
                      coefficients=(498.651651, -283.781631, 55.8554382, -3.82021401, 0.264230861),
                      source="TeaCache4FLUX (ali-vilab)")
    """

    probe: str
    coefficients: tuple[float, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "coefficients", tuple(float(c) for c in self.coefficients))
        if self.coefficients and len(self.coefficients) != 5:
            raise DeclarationError("TeaCacheFacts.coefficients must hold exactly 5 values (degree 4)")


_DENOISER_KINDS = {"unet", "dit"}
_MODALITIES = {"image", "video"}
_GUIDANCE = {"cfg", "true-cfg", "distilled", "none"}


@dataclass(frozen=True)
class FamilyFacts:
    """Facts about a model family's pipeline. Traits are derived from them (``omni.traits``).

    Example (abridged)::

        FamilyFacts(denoiser="dit", denoiser_components=("transformer",),
                    block_attrs=("transformer_blocks", "single_transformer_blocks"),
                    repeated_blocks=True, modality="image", tasks=("t2i",), guidance="distilled",
                    vae_class="AutoencoderKL", vae_tiling=True, vae_slicing=True,
                    text_encoders=("text_encoder", "text_encoder_2"),
                    model_cpu_offload_seq="text_encoder->text_encoder_2->transformer->vae",
                    cache_context=True, qkv_fusion=True)
    """

    denoiser: str
    denoiser_components: tuple[str, ...]
    modality: str
    tasks: tuple[str, ...]
    guidance: str
    vae_class: str
    model_cpu_offload_seq: str
    block_attrs: tuple[str, ...] = ()
    block_classes: tuple[str, ...] = ()
    repeated_blocks: bool = False
    vae_tiling: bool = True
    vae_slicing: bool = True
    text_encoders: tuple[str, ...] = ()
    cache_context: bool = False
    qkv_fusion: bool = False
    conv_heavy: bool = False
    teacache: TeaCacheFacts | None = None

    def __post_init__(self) -> None:
        for name in ("denoiser_components", "tasks", "block_attrs", "block_classes", "text_encoders"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.denoiser not in _DENOISER_KINDS:
            raise DeclarationError(f"FamilyFacts.denoiser {self.denoiser!r} is not one of {sorted(_DENOISER_KINDS)}")
        if self.modality not in _MODALITIES:
            raise DeclarationError(f"FamilyFacts.modality {self.modality!r} is not one of {sorted(_MODALITIES)}")
        if self.guidance not in _GUIDANCE:
            raise DeclarationError(f"FamilyFacts.guidance {self.guidance!r} is not one of {sorted(_GUIDANCE)}")
        if not self.denoiser_components:
            raise DeclarationError("FamilyFacts.denoiser_components must name at least one component")


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise DeclarationError(f"{kind} name {name!r} must match {_NAME_RE.pattern}")
    return name


def _check_path(kind: str, value: str | None) -> None:
    if value is not None and not _PATH_RE.match(value):
        raise DeclarationError(f"{kind} {value!r} must look like 'package.module:attribute'")


def _claims(kind: str, claims: Mapping[str, Claim]) -> Mapping[str, Claim]:
    out = {}
    for key, claim in dict(claims).items():
        if not isinstance(claim, Claim):
            raise DeclarationError(f"{kind}.claims[{key!r}] must be a Claim, got {type(claim).__name__}")
        out[norm(key)] = claim
    return MappingProxyType(out)


def _coerce_enum(enum_cls, value, where: str):
    try:
        return enum_cls(value)
    except ValueError:
        raise DeclarationError(
            f"{where} {value!r} is not one of {[m.value for m in enum_cls]}"  # type: ignore[attr-defined]
        ) from None


@dataclass(frozen=True)
class FamilySpec:
    """A model family (one diffusers pipeline architecture and its siblings).

    Example::

        FamilySpec(
            name="acme",
            summary="ACME-DiT text-to-image",
            pipelines=("AcmePipeline",),
            hub_patterns=("acme-ai/acme-*",),
            facts=FamilyFacts(denoiser="dit", denoiser_components=("transformer",), modality="image",
                              tasks=("t2i",), guidance="cfg", vae_class="AutoencoderKL",
                              model_cpu_offload_seq="text_encoder->transformer->vae"),
            claims={"first_block_cache": unsupported("blocks return a tuple FBC cannot read")},
            load="omni_family_acme.load:load_pipeline",
        )
    """

    name: str
    summary: str
    pipelines: tuple[str, ...]
    facts: FamilyFacts
    hub_patterns: tuple[str, ...] = ()
    extra_traits: frozenset[str] = frozenset()
    claims: Mapping[str, Claim] = field(default_factory=dict)
    load: str | None = None
    default_generation: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _check_name("FamilySpec", self.name))
        object.__setattr__(self, "pipelines", tuple(self.pipelines))
        object.__setattr__(self, "hub_patterns", tuple(self.hub_patterns))
        object.__setattr__(self, "extra_traits", frozenset(self.extra_traits))
        object.__setattr__(self, "claims", _claims("FamilySpec", self.claims))
        object.__setattr__(self, "default_generation", MappingProxyType(dict(self.default_generation)))
        if not self.summary:
            raise DeclarationError(f"FamilySpec {self.name!r} needs a summary")
        if not isinstance(self.facts, FamilyFacts):
            raise DeclarationError(f"FamilySpec {self.name!r}: facts must be a FamilyFacts")
        _check_path("FamilySpec.load", self.load)

    @property
    def traits(self) -> frozenset[str]:
        from omni.traits import derive_traits

        return derive_traits(self.facts) | self.extra_traits


@dataclass(frozen=True)
class OptimizationSpec:
    """One optimization a plugin provides.

    Example::

        OptimizationSpec(
            name="vae_tiling",
            stage=Stage.DECODE,
            summary="decode the latent in overlapping tiles (lower peak memory)",
            lossless=False,
            options=(Option("tile_size", "int", 0, "0 = the VAE's default", min=0),),
            config_keys=(ConfigKey("enable_vae_tiling", enables=True),),
            requires_traits=frozenset({"vae:tiling"}),
            impl="omni_plugin_vae.impl:tiling",
            tolerance_psnr=20.0,
        )

    ``order`` sorts optimizations inside a stage (lower first). ``exclusive_group`` makes every
    member of the group conflict with the others (e.g. "cache", "offload"). ``conflicts_with`` adds
    named conflicts with a reason. ``reversible=False`` marks optimizations that cannot be undone once
    applied (reported; ``omni.optimize`` notes that the caller's pipeline is changed for good).
    ``places_pipeline=True`` marks optimizations that manage device placement themselves (offload):
    the core then does not move the pipeline to the accelerator.
    ``tolerance_psnr`` is the PSNR floor (dB) ``omni verify`` accepts for lossy optimizations;
    lossless ones must match within ``atol`` 1e-4 of the baseline. ``verify_overrides`` are option
    values and ``verify_generation`` generation arguments (``num_inference_steps`` ...) that
    ``omni verify`` uses on tiny models (e.g. a tile size small enough to really tile).
    ``verify_prepare`` (``"module:function"``, called as ``fn(model_name, workdir)``) returns extra
    option values that depend on the model, e.g. the path of a GGUF file converted from it.
    """

    name: str
    stage: Stage
    summary: str
    lossless: bool
    impl: str | None = None
    options: tuple[Option, ...] = ()
    config_keys: tuple[ConfigKey, ...] = ()
    requires_traits: frozenset[str] = frozenset()
    trait_hints: Mapping[str, str] = field(default_factory=dict)
    claims: Mapping[str, Claim] = field(default_factory=dict)
    exclusive_group: str | None = None
    conflicts_with: Mapping[str, str] = field(default_factory=dict)
    needs: Needs = field(default_factory=Needs)
    order: int = 100
    reversible: bool = True
    places_pipeline: bool = False
    tolerance_psnr: float | None = None
    verify_overrides: Mapping[str, Any] = field(default_factory=dict)
    verify_generation: Mapping[str, Any] = field(default_factory=dict)
    verify_prepare: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _check_name("OptimizationSpec", self.name))
        object.__setattr__(self, "stage", _coerce_enum(Stage, self.stage, f"OptimizationSpec {self.name!r}: stage"))
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "config_keys", tuple(self.config_keys))
        object.__setattr__(self, "requires_traits", frozenset(self.requires_traits))
        object.__setattr__(self, "trait_hints", MappingProxyType(dict(self.trait_hints)))
        for trait in self.trait_hints:
            if trait not in self.requires_traits:
                raise DeclarationError(f"OptimizationSpec {self.name!r}: trait_hints names {trait!r}, which is not required")
        object.__setattr__(self, "claims", _claims("OptimizationSpec", self.claims))
        object.__setattr__(
            self, "conflicts_with", MappingProxyType({norm(k): v for k, v in dict(self.conflicts_with).items()})
        )
        object.__setattr__(self, "verify_overrides", MappingProxyType(dict(self.verify_overrides)))
        object.__setattr__(self, "verify_generation", MappingProxyType(dict(self.verify_generation)))
        if not self.summary:
            raise DeclarationError(f"OptimizationSpec {self.name!r} needs a summary")
        if not isinstance(self.needs, Needs):
            raise DeclarationError(f"OptimizationSpec {self.name!r}: needs must be a Needs")
        _check_path("OptimizationSpec.impl", self.impl)
        _check_path("OptimizationSpec.verify_prepare", self.verify_prepare)
        seen = set()
        for opt in self.options:
            if not isinstance(opt, Option):
                raise DeclarationError(f"OptimizationSpec {self.name!r}: options must be Option objects")
            if opt.name in seen:
                raise DeclarationError(f"OptimizationSpec {self.name!r}: option {opt.name!r} declared twice")
            seen.add(opt.name)
        for key in self.config_keys:
            if not isinstance(key, ConfigKey):
                raise DeclarationError(f"OptimizationSpec {self.name!r}: config_keys must be ConfigKey objects")
            for target in (key.option, key.value_option):
                if target is not None and target not in seen:
                    raise DeclarationError(
                        f"OptimizationSpec {self.name!r}: config key {key.key!r} targets unknown option {target!r}"
                    )
        for name in self.verify_overrides:
            if name not in seen:
                raise DeclarationError(f"OptimizationSpec {self.name!r}: verify_overrides names unknown option {name!r}")
        if not self.lossless and self.tolerance_psnr is None:
            raise DeclarationError(f"OptimizationSpec {self.name!r} is lossy and must declare tolerance_psnr")

    def option(self, name: str) -> Option:
        for opt in self.options:
            if opt.name == name:
                return opt
        raise KeyError(name)

    @property
    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}


@dataclass(frozen=True)
class ModelSpec:
    """A concrete, named model that every command taking MODEL resolves (``tiny-flux``, ``shapes``).

    ``build`` points to a callable ``build(dtype=None) -> str | pipeline`` returning a local diffusers
    folder (or a built pipeline). Nothing is built until a run needs it.

    Example::

        ModelSpec(name="tiny-flux", family="flux", summary="random tiny FluxPipeline (CPU tests)",
                  build="omni_family_flux.tiny:build_tiny", size="tiny",
                  default_generation={"height": 64, "width": 64, "num_inference_steps": 4})
    """

    name: str
    family: str
    summary: str
    build: str
    size: str = "tiny"
    default_generation: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _check_name("ModelSpec", self.name))
        object.__setattr__(self, "family", norm(self.family))
        object.__setattr__(self, "default_generation", MappingProxyType(dict(self.default_generation)))
        if not self.summary:
            raise DeclarationError(f"ModelSpec {self.name!r} needs a summary")
        _check_path("ModelSpec.build", self.build)
