"""Model-family declarations: what a family's pipeline looks like (``FamilyFacts``), which generation
sizes it can take (``Limits``), and the family itself (``FamilySpec``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from omni.errors import DeclarationError
from omni.specs.base import (
    TASK_NAMES,
    Behaviour,
    Claim,
    check_behaviour,
    check_name,
    claims,
    frozen_mapping,
    strs,
    trait_set,
)

DENOISER_KINDS = frozenset({"unet", "dit"})
MODALITIES = frozenset({"image", "video"})
GUIDANCE = frozenset({"cfg", "true-cfg", "distilled", "none"})
TASKS = TASK_NAMES


@dataclass(frozen=True)
class FamilyFacts:
    """Facts about a model family's pipeline. The core derives traits from them (``omni.traits``).

    Example::

        FamilyFacts(denoiser="dit", denoiser_components=("transformer",),
                    block_attrs=("transformer_blocks", "single_transformer_blocks"),
                    repeated_blocks=True, modality="image", tasks=("t2i",), guidance="distilled",
                    text_encoders=("text_encoder", "text_encoder_2"), cache_context=True, qkv_fusion=True)
    """

    denoiser: str
    denoiser_components: tuple[str, ...]
    modality: str
    tasks: tuple[str, ...]
    guidance: str
    block_attrs: tuple[str, ...] = ()
    repeated_blocks: bool = False
    vae_tiling: bool = True
    vae_slicing: bool = True
    text_encoders: tuple[str, ...] = ()
    cache_context: bool = False
    qkv_fusion: bool = False
    conv_heavy: bool = False

    def __post_init__(self) -> None:
        for name in ("denoiser_components", "tasks", "block_attrs", "text_encoders"):
            object.__setattr__(self, name, strs(f"FamilyFacts.{name}", getattr(self, name)))
        if self.denoiser not in DENOISER_KINDS:
            raise DeclarationError(f"FamilyFacts.denoiser {self.denoiser!r} is not one of {sorted(DENOISER_KINDS)}")
        if self.modality not in MODALITIES:
            raise DeclarationError(f"FamilyFacts.modality {self.modality!r} is not one of {sorted(MODALITIES)}")
        if self.guidance not in GUIDANCE:
            raise DeclarationError(f"FamilyFacts.guidance {self.guidance!r} is not one of {sorted(GUIDANCE)}")
        if not self.denoiser_components:
            raise DeclarationError("FamilyFacts.denoiser_components must name at least one component")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise DeclarationError(f"FamilyFacts.tasks: {unknown[0]!r} is not one of {sorted(TASKS)}")
        for flag in ("repeated_blocks", "vae_tiling", "vae_slicing", "cache_context", "qkv_fusion", "conv_heavy"):
            if not isinstance(getattr(self, flag), bool):
                raise DeclarationError(f"FamilyFacts.{flag} must be True or False")


@dataclass(frozen=True)
class Limits:
    """Generation sizes a family's pipeline takes without silently changing them.

    ``size_multiple``: height and width must be multiples of it (the VAE's scale factor times the
    denoiser's patch size); ``min_size``: smallest height/width; ``max_pixels``: height × width (None:
    no limit); video: ``num_frames % frames_multiple == frames_offset`` (Wan: 4k + 1), ``max_frames``.

    Example::

        Limits(size_multiple=16, min_size=16, frames_multiple=4, frames_offset=1)
    """

    size_multiple: int = 8
    min_size: int | None = None
    max_pixels: int | None = None
    frames_multiple: int | None = None
    frames_offset: int = 1
    max_frames: int | None = None

    def __post_init__(self) -> None:
        for name in ("size_multiple", "min_size", "max_pixels", "frames_multiple", "max_frames"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise DeclarationError(f"Limits.{name} must be a positive integer, not {value!r}")
        if not isinstance(self.frames_offset, int) or self.frames_offset < 0:
            raise DeclarationError("Limits.frames_offset must be an integer >= 0")
        if self.frames_multiple is not None and self.frames_offset >= self.frames_multiple:
            raise DeclarationError("Limits.frames_offset must be smaller than frames_multiple")

    @property
    def smallest(self) -> int:
        return self.min_size or self.size_multiple


@dataclass(frozen=True)
class FamilySpec:
    """A model family (one diffusers pipeline architecture and its siblings).

    ``extras`` holds data owned by optimization plugins, keyed by the optimization's name
    (``{"teacache": {"probe": ..., "coefficients": [...]}}``): the plugin that declares
    ``family_traits`` validates it and derives traits from it; the core only carries it.

    ``task_pipelines`` maps each task of ``facts.tasks`` to the diffusers pipeline class that runs it
    (``{"t2i": "FluxPipeline", "i2i": "FluxImg2ImgPipeline", "edit": "FluxKontextPipeline"}``); a request for
    another task than the loaded pipeline's builds that class from the same components (``from_pipe``, no
    weights loaded twice). Every class named must be in ``pipelines``. ``task_check`` (an import path or a
    callable ``task_check(task, pipe)``) returns why this model's task pipeline, built, still cannot
    run ``task`` (a text-to-video transformer that takes no image condition), or None; the request then fails
    with that reason before anything runs.

    ``load`` (an import path or a callable ``load(ctx, step) -> pipeline``) defaults to omni's
    ``DiffusionPipeline.from_pretrained`` loader.

    ``infer`` makes a *catch-all* family (``pipelines=()``): it handles any pipeline class no family
    claims, and ``infer(index, pipe=None) -> (FamilyFacts, notes)`` infers the facts of one model from its
    ``model_index.json`` (no weights, no torch import) and, once loaded, from the pipeline object.

    Example::

        FamilySpec(
            name="acme", summary="ACME-DiT text-to-image", pipelines=("AcmePipeline",),
            hub_patterns=("acme-ai/acme-*",),
            facts=FamilyFacts(denoiser="dit", denoiser_components=("transformer",), modality="image",
                              tasks=("t2i",), guidance="cfg", block_attrs=("transformer_blocks",)),
            limits=Limits(size_multiple=16),
            claims={"first_block_cache": unsupported("blocks return a tuple FBC cannot read")},
        )
    """

    name: str
    summary: str
    pipelines: tuple[str, ...]
    facts: FamilyFacts
    hub_patterns: tuple[str, ...] = ()
    extra_traits: frozenset[str] = frozenset()
    claims: Mapping[str, Claim] = field(default_factory=dict)
    extras: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    task_pipelines: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    load: Behaviour | None = None
    default_generation: Mapping[str, Any] = field(default_factory=dict)
    infer: Behaviour | None = None
    task_check: Behaviour | None = None

    @property
    def catch_all(self) -> bool:
        """Whether this family handles the pipelines no family claims (it declares ``infer``)."""
        return self.infer is not None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name("FamilySpec", self.name))
        where = f"FamilySpec {self.name!r}"
        object.__setattr__(self, "pipelines", strs(f"{where}: pipelines", self.pipelines))
        check_behaviour(f"{where}: infer", self.infer)
        if not self.pipelines and self.infer is None:
            raise DeclarationError(f"{where}: pipelines must name at least one pipeline class")
        if self.pipelines and self.infer is not None:
            raise DeclarationError(f"{where}: a catch-all family (infer=...) claims no pipeline class")
        object.__setattr__(self, "hub_patterns", strs(f"{where}: hub_patterns", self.hub_patterns))
        for pattern in self.hub_patterns:
            if "/" not in pattern or pattern.split("/", 1)[0] in ("", "*"):
                raise DeclarationError(f"{where}: hub pattern {pattern!r} must be 'organisation/name-glob' "
                                       "with a literal organisation")
        object.__setattr__(self, "extra_traits", trait_set(f"{where}: extra_traits", self.extra_traits))
        object.__setattr__(self, "claims", claims(where, self.claims))
        extras = frozen_mapping(f"{where}: extras", self.extras)
        object.__setattr__(self, "extras", MappingProxyType(
            {key: frozen_mapping(f"{where}: extras[{key!r}]", value) for key, value in extras.items()}))
        object.__setattr__(self, "default_generation",
                           frozen_mapping(f"{where}: default_generation", self.default_generation))
        tasks = frozen_mapping(f"{where}: task_pipelines", self.task_pipelines)
        for task, cls in tasks.items():
            if task not in TASKS:
                raise DeclarationError(f"{where}: task_pipelines key {task!r} is not one of {sorted(TASKS)}")
            if not isinstance(self.facts, FamilyFacts) or task not in self.facts.tasks:
                raise DeclarationError(f"{where}: task_pipelines names task {task!r}, which facts.tasks does not list")
            if not isinstance(cls, str) or cls not in self.pipelines:
                raise DeclarationError(f"{where}: task_pipelines[{task!r}] = {cls!r} is not one of pipelines")
        object.__setattr__(self, "task_pipelines", tasks)
        check_behaviour(f"{where}: task_check", self.task_check)
        if not self.summary or not isinstance(self.summary, str):
            raise DeclarationError(f"{where} needs a summary")
        if not isinstance(self.facts, FamilyFacts):
            raise DeclarationError(f"{where}: facts must be a FamilyFacts")
        if not isinstance(self.limits, Limits):
            raise DeclarationError(f"{where}: limits must be a Limits")
        check_behaviour(f"{where}: load", self.load)

    @property
    def core_traits(self) -> frozenset[str]:
        """Traits the core derives from the facts, plus ``extra_traits`` (plugins add the traits they
        read from ``extras``: see ``Registry.traits``)."""
        from omni.traits import derive_traits

        return derive_traits(self.facts) | self.extra_traits
