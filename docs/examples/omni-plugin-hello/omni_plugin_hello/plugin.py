"""A preset (``--preset low-memory-decode``), a command (``omni hello MODEL``) and a wrapper around every
step that records how long each took (in the report's notes). No torch import at module level."""

import time

import typer

from omni.sdk import PresetSpec, hookimpl


@hookimpl
def omni_register_presets():
    yield PresetSpec(name="low-memory-decode", description="decode one image at a time, in tiles",
                     config={"enable_vae_slicing": True, "enable_vae_tiling": True})


@hookimpl
def omni_register_commands(app):
    @app.command("hello")
    def hello(model: str = typer.Argument(..., help="Named model, folder or cached hub id.")) -> None:
        """Say which family MODEL belongs to (resolved offline, nothing loaded)."""
        from omni.sdk import console, handle_errors, resolve

        @handle_errors
        def run() -> None:
            resolved = resolve(model)
            console().print(f"hello {resolved.ref}: family {resolved.family} ({resolved.how})")

        run()


@hookimpl(wrapper=True)
def omni_step(ctx, step):
    t0 = time.perf_counter()
    try:
        return (yield)
    finally:
        ctx.notes.append(f"hello: {step.name} took {time.perf_counter() - t0:.3f}s")
