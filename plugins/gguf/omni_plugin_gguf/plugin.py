"""Declarations only (no torch / diffusers / gguf import). Code: :mod:`.impl` (loading), :mod:`.convert`.

* optimization ``gguf`` (LOAD stage): the denoiser is built with diffusers'
  ``from_single_file(FILE, config=<component folder>, quantization_config=GGUFQuantizationConfig(...))``
  instead of its safetensors; the file is validated (readable, complete, names and shapes matching
  the component's config) before anything loads.
* command ``omni convert MODEL --to gguf --qtype Q8_0 --output FILE``: writes the denoiser of any
  model omni resolves as a GGUF file with diffusers key names.

Config keys: ``quantization: gguf`` (vLLM-Omni) selects it and ``gguf_model`` sets the file;
``gguf_path: FILE`` alone both selects it and sets the file.
"""

from typing import Optional

from omni.sdk import ConfigKey, Needs, OptimizationSpec, Option, Stage, hookimpl, supported

from omni_plugin_gguf.qtypes import K_QUANT_NOTE, WRITABLE

# `omni verify` converts each tiny model to Q8_0 first (verify_prepare) and loads it back; the other
# qtypes' round trips are proven by tests/plugins/test_plugin_gguf.py.
VERIFIED = ("flux", "sd15", "sdxl", "sd3")
TOLERANCE_PSNR = 30.0  # below the loosest writable type, Q4_0 (docs/benchmarks.md: Quantization)


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="gguf",
        stage=Stage.LOAD,
        summary="load the denoiser from a GGUF file (Q8_0/Q5_1/Q4_0/BF16/K-quants...), dequantized on the fly "
                "(diffusers GGUFQuantizationConfig)",
        lossless=False,
        tolerance_psnr=TOLERANCE_PSNR,
        impl="omni_plugin_gguf.impl:load_gguf",
        options=(
            Option("path", "path", None, "the GGUF file to load (write one with: omni convert MODEL --to gguf "
                   "--output FILE)"),
            Option("compute_dtype", "dtype", None, "dtype the GGUF weights are dequantized to for each matmul; "
                   "default and only accepted value: the run's dtype (--dtype), since diffusers' GGUFLinear does not "
                   "cast activations"),
            Option("component", "str", "", "pipeline component the file replaces; empty = the family's first "
                   "denoiser (set transformer_2 for the second expert of a two-denoiser family)"),
        ),
        config_keys=(
            ConfigKey("quantization", when=("gguf",), requires={"quantization_backend": (None,)}),
            ConfigKey("gguf_model", option="path"),
            ConfigKey("gguf_path", present=True, option="path"),
        ),
        conflicts_with={
            "torchao": "gguf and torchao both replace the denoiser's weights with quantized ones",
            "torchao_load": "gguf and torchao_load both replace the denoiser's weights with quantized ones",
            "torchao_fp8_dynamic": "gguf and torchao both replace the denoiser's weights with quantized ones",
            "torchao_int4_weight_only": "gguf and torchao both replace the denoiser's weights with quantized ones",
            "layerwise_casting": "GGUF weights are already stored quantized; layerwise casting would re-cast them",
        },
        needs=Needs(packages=("gguf>=0.10",)),
        claims={f: supported("verified: omni verify (Q8_0 converted from the tiny model)") for f in VERIFIED},
        verify_prepare="omni_plugin_gguf.verify:prepare",
        order=10,
    )


@hookimpl
def omni_register_commands(app):
    import typer

    from omni.sdk import handle_errors

    @app.command("convert")
    @handle_errors
    def convert(
        model: str = typer.Argument(..., help="Named model (tiny-flux), local diffusers folder, or cached hub id."),
        to: str = typer.Option(..., "--to", help="Target format: gguf."),
        qtype: str = typer.Option(
            "Q8_0", "--qtype",
            help=f"GGUF type of the Linear weights: {', '.join(WRITABLE)}. {K_QUANT_NOTE}"),
        output: str = typer.Option(..., "--output", "-o", help="The .gguf file to write."),
        component: Optional[str] = typer.Option(
            None, "--component", help="Component to convert (default: the family's first denoiser)."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
        allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Read weights stored as pickle (.bin); "
                                                                        "reading them runs code from the file."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Write the denoiser of MODEL as a GGUF file (diffusers key names) that `--optimize gguf` loads."""
        from omni_plugin_gguf.convert import convert_command

        convert_command(model, to=to, qtype=qtype, output=output, component=component, force=force,
                        json_out=json_out, allow_pickle=allow_pickle)
