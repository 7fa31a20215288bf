'''The hook specifications of omni (project name ``omni``, prefix ``omni_``).

* **Declaration hooks** take no arguments and yield typed, frozen declarations (:mod:`omni.specs`).
  They are called once per process when plugins load and must not import torch, diffusers or
  transformers. Behaviour travels with the declarations (``impl``, ``load``, ``build``, ``expand``).
* ``omni_register_commands(app)`` adds CLI commands.
* ``omni_step(ctx, step)`` runs one planned step. The core owns the innermost implementation (it
  calls the declaration's ``impl``); plugins may only **wrap** it (``@omni.hookimpl(wrapper=True)``)
  to observe or time steps. A non-wrapper implementation makes the plugin ``invalid``: there is one
  way to implement a step.

Every hook has an example in its docstring; ``tests/core/test_docs.py`` checks that each hook is
documented in ``docs/plugin-guide.md``.
'''

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from omni.runtime.context import RunContext, Step
    from omni.specs import FamilySpec, ModelSpec, OptimizationSpec, PresetSpec

PROJECT = "omni"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

DECLARATION_HOOKS = ("omni_register_families", "omni_register_optimizations", "omni_register_models",
                     "omni_register_presets")
WRAP_ONLY_HOOKS = ("omni_step",)


class OmniSpecs:
    """Hook specifications. Implement any subset with ``@omni.hookimpl`` in your plugin module."""

    @hookspec
    def omni_register_families(self) -> Iterable[FamilySpec]:
        """Yield the model families this plugin provides.

        Example::

            from omni.sdk import FamilyFacts, FamilySpec, hookimpl

            @hookimpl
            def omni_register_families():
                yield FamilySpec(
                    name="acme", summary="ACME-DiT text-to-image",
                    pipelines=("AcmePipeline",), hub_patterns=("acme-ai/acme-*",),
                    facts=FamilyFacts(denoiser="dit", denoiser_components=("transformer",),
                                      modality="image", tasks=("t2i",), guidance="cfg",
                                      block_attrs=("transformer_blocks",)))
        """

    @hookspec
    def omni_register_optimizations(self) -> Iterable[OptimizationSpec]:
        """Yield the optimizations this plugin provides.

        Example::

            from omni.sdk import ConfigKey, OptimizationSpec, Stage, hookimpl

            @hookimpl
            def omni_register_optimizations():
                yield OptimizationSpec(
                    name="vae_slicing", stage=Stage.DECODE, lossless=True,
                    summary="decode a batch one image at a time",
                    config_keys=(ConfigKey("enable_vae_slicing", enables=True),),
                    requires_traits={"vae:slicing"},
                    impl="omni_plugin_vae.impl:slicing")
        """

    @hookspec
    def omni_register_models(self) -> Iterable[ModelSpec]:
        """Yield named models (``tiny-flux``, ``shapes``) that any command taking MODEL resolves.

        Example::

            from omni.sdk import ModelSpec, hookimpl

            @hookimpl
            def omni_register_models():
                yield ModelSpec(name="tiny-acme", family="acme", summary="random tiny ACME",
                                build="omni_family_acme.tiny:build_tiny")
        """

    @hookspec
    def omni_register_presets(self) -> Iterable[PresetSpec]:
        """Yield named presets (``omni run --preset NAME``).

        Example::

            from omni.sdk import PresetSpec, hookimpl

            @hookimpl
            def omni_register_presets():
                yield PresetSpec(name="small-vram", description="offload and tile",
                                 config={"enable_model_cpu_offload": True, "enable_vae_tiling": True})
        """

    @hookspec
    def omni_register_commands(self, app: Any) -> None:
        """Add CLI commands to the ``omni`` Typer app (called once, before parsing the command line).
        Import heavy libraries inside the command function, never at module level.

        Example::

            import typer
            from omni.sdk import hookimpl

            @hookimpl
            def omni_register_commands(app):
                @app.command("convert")
                def convert(model: str, qtype: str = typer.Option("Q8_0", "--qtype")):
                    from omni_plugin_gguf.convert import convert_model
                    convert_model(model, qtype)
        """

    @hookspec(firstresult=True)
    def omni_step(self, ctx: RunContext, step: Step) -> Any:
        """Run one planned step (an optimization, or the family load when ``step.family`` is set).
        The core's implementation calls the declaration's ``impl``; plugins may only wrap it.

        Example::

            import time
            from omni.sdk import hookimpl

            @hookimpl(wrapper=True)
            def omni_step(ctx, step):
                t0 = time.perf_counter()
                try:
                    return (yield)
                finally:
                    ctx.notes.append(f"{step.name}: {time.perf_counter() - t0:.3f}s")
        """
