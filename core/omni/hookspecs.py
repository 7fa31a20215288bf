'''The hook specifications of omni (project name ``omni``, prefix ``omni_``).

Two kinds of hooks:

* **Declaration hooks** take no arguments and yield typed, frozen declarations
  (:mod:`omni.specs`). They are called once per process when plugins load; they must not import
  torch, diffusers or transformers.
* **Stage hooks** run one planned step of a run. The core calls them in this fixed order::

      load -> quantize -> place -> cache -> compile -> decode

  and for each step calls the hook **only on the plugin that declared the step** (provenance),
  then on omni's built-in dispatcher, which imports the declaration's ``impl`` / ``load`` path.
  The first non-None result wins (pytest's default-implementation pattern). So a plugin can
  either point ``impl`` at a function (most do) or implement the stage hook itself.

Stage hooks receive a :class:`omni.runtime.context.RunContext` (``ctx``: the pipeline, the resolved
model and family, the environment, load kwargs) and a :class:`omni.runtime.context.Step` (``step``:
the declaration, the options resolved for this run, and the declaring plugin). They return an
:class:`omni.runtime.context.Applied` (what was done, how to undo it, how to read per-step stats) or
raise :class:`omni.runtime.context.Skip` when the environment/pipeline turns out not to allow it
at apply time (reported as ``skipped`` with the reason, never silently ignored).

Every hook below has a runnable example in its docstring; ``tests/core/test_hookspec_docs.py``
checks that each hook is documented in ``docs/plugin-guide.md``.
'''

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from omni.runtime.context import Applied, RunContext, Step
    from omni.specs import FamilySpec, ModelSpec, OptimizationSpec

PROJECT = "omni"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

STAGE_HOOKS = ("omni_load", "omni_quantize", "omni_place", "omni_cache", "omni_compile", "omni_decode")


class OmniSpecs:
    """Hook specifications. Implement any subset with ``@omni.hookimpl`` in your plugin module."""

    # ---------------------------------------------------------------- declarations
    @hookspec
    def omni_register_families(self) -> Iterable[FamilySpec]:
        """Yield the model families this plugin provides.

        Example::

            import omni
            from omni.specs import FamilyFacts, FamilySpec

            @omni.hookimpl
            def omni_register_families():
                yield FamilySpec(
                    name="acme", summary="ACME-DiT text-to-image",
                    pipelines=("AcmePipeline",), hub_patterns=("acme-ai/acme-*",),
                    facts=FamilyFacts(denoiser="dit", denoiser_components=("transformer",),
                                      modality="image", tasks=("t2i",), guidance="cfg",
                                      vae_class="AutoencoderKL",
                                      model_cpu_offload_seq="text_encoder->transformer->vae"),
                    load="omni_family_acme.load:load_pipeline")
        """

    @hookspec
    def omni_register_optimizations(self) -> Iterable[OptimizationSpec]:
        """Yield the optimizations this plugin provides.

        Example::

            import omni
            from omni.specs import ConfigKey, OptimizationSpec, Stage

            @omni.hookimpl
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

            import omni
            from omni.specs import ModelSpec

            @omni.hookimpl
            def omni_register_models():
                yield ModelSpec(name="tiny-acme", family="acme", summary="random tiny ACME",
                                build="omni_family_acme.tiny:build_tiny")
        """

    @hookspec
    def omni_register_commands(self, app: Any) -> None:
        """Add CLI commands to the ``omni`` Typer app (called once, before parsing the command line).
        Import heavy libraries inside the command function, never at module level.

        Example::

            import typer

            @omni.hookimpl
            def omni_register_commands(app):
                @app.command("convert")
                def convert(model: str, qtype: str = typer.Option("Q8_0", "--qtype")):
                    from omni_plugin_gguf.convert import convert_model
                    convert_model(model, qtype)
        """

    # ---------------------------------------------------------------- stages of a run
    @hookspec(firstresult=True)
    def omni_load(self, ctx: RunContext, step: Step) -> Applied | Any | None:
        """LOAD stage. Two kinds of steps reach this hook:

        * load-time optimizations (GGUF, torchao load-time quantization) run first and edit
          ``ctx.load_kwargs`` / ``ctx.component_overrides``; they return an ``Applied``;
        * then the family's load step (``step.family`` is set) builds the pipeline from
          ``ctx.model`` honouring those kwargs and returns it.

        Example::

            @omni.hookimpl
            def omni_load(ctx, step):
                from diffusers import DiffusionPipeline
                return DiffusionPipeline.from_pretrained(ctx.model.path, local_files_only=True,
                                                         **ctx.load_kwargs)
        """

    @hookspec(firstresult=True)
    def omni_quantize(self, ctx: RunContext, step: Step) -> Applied | None:
        """QUANTIZE stage: post-load weight rewrites (QKV fusion first, then torchao, then
        layerwise casting).

        Example::

            @omni.hookimpl
            def omni_quantize(ctx, step):
                from torchao.quantization import Int8WeightOnlyConfig, quantize_
                quantize_(ctx.pipe.transformer, Int8WeightOnlyConfig())
                return Applied(details={"scheme": "int8_weight_only"})
        """

    @hookspec(firstresult=True)
    def omni_place(self, ctx: RunContext, step: Step) -> Applied | None:
        """PLACE stage: devices, offload, memory layout.

        Example::

            @omni.hookimpl
            def omni_place(ctx, step):
                ctx.pipe.enable_model_cpu_offload()
                return Applied(undo=ctx.pipe.remove_all_hooks)
        """

    @hookspec(firstresult=True)
    def omni_cache(self, ctx: RunContext, step: Step) -> Applied | None:
        """CACHE stage: step caches. Return ``Applied(stats=reader)`` where ``reader()`` returns
        the per-denoising-step list of ``"computed"`` / ``"reused"`` since the last call.

        Example::

            @omni.hookimpl
            def omni_cache(ctx, step):
                from diffusers import FirstBlockCacheConfig
                ctx.pipe.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.2))
                return Applied(undo=ctx.pipe.transformer.disable_cache)
        """

    @hookspec(firstresult=True)
    def omni_compile(self, ctx: RunContext, step: Step) -> Applied | None:
        """COMPILE stage: torch.compile, always after caches and placement hooks.

        Example::

            @omni.hookimpl
            def omni_compile(ctx, step):
                ctx.pipe.transformer.compile_repeated_blocks(fullgraph=False)
                return Applied(details={"mode": "regional"})
        """

    @hookspec(firstresult=True)
    def omni_decode(self, ctx: RunContext, step: Step) -> Applied | None:
        """DECODE stage: VAE options (slicing, tiling).

        Example::

            @omni.hookimpl
            def omni_decode(ctx, step):
                ctx.pipe.vae.enable_tiling()
                return Applied(undo=ctx.pipe.vae.disable_tiling)
        """
