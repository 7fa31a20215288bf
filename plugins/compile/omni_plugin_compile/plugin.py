"""Declarations only (no torch import)."""

from omni.sdk import ConfigKey, Needs, OptimizationSpec, Option, Stage, hookimpl, supported

VERIFIED = ("flux",)


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="compile",
        stage=Stage.COMPILE,
        summary="torch.compile the denoiser: regional (each repeated block, fast to compile) or full",
        lossless=True,
        impl="omni_plugin_compile.impl:apply",
        options=(
            Option("mode", "choice", "regional", "regional: compile_repeated_blocks / the family's block lists; "
                   "full: the whole denoiser", choices=("regional", "full")),
            Option("backend", "choice", "inductor", "torch.compile backend", choices=("inductor", "eager", "aot_eager")),
            Option("fullgraph", "bool", False, "require one graph (refused when cache/offload hooks are present)"),
            Option("dynamic", "bool", False, "compile for dynamic shapes (fewer recompiles across resolutions)"),
        ),
        config_keys=(
            ConfigKey("compile", enables=True),
            ConfigKey("torch_compile", enables=True),
            ConfigKey("compile_mode", option="mode"),
            ConfigKey("enforce_eager", disables=True),
        ),
        claims={f: supported("verified: omni verify (inductor)") for f in VERIFIED},
        needs=Needs(packages=("torch>=2.4",)),
        order=10,
    )
