"""Named models (``tiny-flux``, ``shapes``) and named presets (``vram-first``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omni.errors import DeclarationError
from omni.names import norm
from omni.specs.base import TASK_NAMES, Behaviour, check_behaviour, check_name, frozen_mapping, strs
from omni.specs.family import Limits

SIZES = ("tiny", "medium", "large")
WEIGHTS = ("random", "trained")


@dataclass(frozen=True)
class ModelSpec:
    """A concrete, named model that every command taking MODEL resolves (``tiny-flux``, ``shapes``).

    ``build`` (an import path or a callable ``build() -> str | pipeline``) returns a local diffusers
    folder; nothing is built until a run needs it. ``size``: ``tiny`` (tests, ``omni verify``),
    ``medium`` (benchmarks) or ``large``. ``weights``: ``random`` (built offline from a seed) or
    ``trained``; calibrations fitted on random weights stay out of real models' cells. ``limits``
    overrides the family's ``Limits`` where this model's VAE or patch size differs. ``task_generation``
    adds generation arguments for one task (``{"edit": {"_auto_resize": False}}``). ``adherence`` (an
    import path or callable ``fn(images, prompts) -> float``) scores how many outputs follow their prompt
    (0..1); ``omni tune --min-adherence`` uses it as a quality floor. ``task`` names the task of the model's own
    pipeline when that is not the family's first pipeline class (``tiny-wan-i2v`` is a WanImageToVideoPipeline:
    ``"i2v"``); ``omni verify`` runs that task's cells on it, and the family's other tasks on ``tiny-<family>``.

    Example::

        ModelSpec(name="tiny-flux", family="flux", summary="random tiny FluxPipeline (CPU tests)",
                  build="omni_family_flux.tiny:build_tiny", size="tiny", weights="random",
                  default_generation={"height": 64, "width": 64, "num_inference_steps": 4})
    """

    name: str
    family: str
    summary: str
    build: Behaviour
    size: str = "tiny"
    weights: str = "random"
    limits: Limits | None = None
    default_generation: Mapping[str, Any] = field(default_factory=dict)
    adherence: Behaviour | None = None
    task_generation: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    task: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name("ModelSpec", self.name))
        where = f"ModelSpec {self.name!r}"
        object.__setattr__(self, "family", norm(check_name(f"{where}: family", self.family)))
        object.__setattr__(self, "default_generation",
                           frozen_mapping(f"{where}: default_generation", self.default_generation))
        tasks = frozen_mapping(f"{where}: task_generation", self.task_generation)
        for task, args in tasks.items():
            if task not in TASK_NAMES:
                raise DeclarationError(f"{where}: task_generation key {task!r} is not one of {sorted(TASK_NAMES)}")
            frozen_mapping(f"{where}: task_generation[{task!r}]", args)
        object.__setattr__(self, "task_generation", tasks)
        if self.task and self.task not in TASK_NAMES:
            raise DeclarationError(f"{where}: task {self.task!r} is not one of {sorted(TASK_NAMES)}")
        if not self.summary or not isinstance(self.summary, str):
            raise DeclarationError(f"{where} needs a summary")
        if self.size not in SIZES:
            raise DeclarationError(f"{where}: size {self.size!r} is not one of {', '.join(SIZES)}")
        if self.weights not in WEIGHTS:
            raise DeclarationError(f"{where}: weights {self.weights!r} is not one of {', '.join(WEIGHTS)}")
        if self.limits is not None and not isinstance(self.limits, Limits):
            raise DeclarationError(f"{where}: limits must be a Limits")
        check_behaviour(f"{where}: build", self.build, optional=False)
        check_behaviour(f"{where}: adherence", self.adherence)


@dataclass(frozen=True)
class PresetSpec:
    """A named preset: config keys and/or optimization names, or a function computing them per model.

    ``expand`` (an import path or callable ``expand(registry, family, env) -> (config, names)``)
    computes a preset that depends on the model (``lossless``). A preset must never conflict with
    itself: ``omni presets MODEL`` shows what it expands to, and a test plans every preset on every
    family.

    Example::

        PresetSpec(name="vram-first", description="fit in less accelerator memory first",
                   config={"enable_model_cpu_offload": True, "enable_vae_tiling": True})
    """

    name: str
    description: str
    config: Mapping[str, Any] = field(default_factory=dict)
    optimize: tuple[str, ...] = ()
    expand: Behaviour | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name("PresetSpec", self.name))
        where = f"PresetSpec {self.name!r}"
        object.__setattr__(self, "config", frozen_mapping(f"{where}: config", self.config))
        object.__setattr__(self, "optimize", strs(f"{where}: optimize", self.optimize))
        check_behaviour(f"{where}: expand", self.expand)
        if not self.description or not isinstance(self.description, str):
            raise DeclarationError(f"{where} needs a description")
        if not (self.config or self.optimize or self.expand):
            raise DeclarationError(f"{where} selects nothing: set config, optimize or expand")
