"""The step: check, apply, say how to undo."""

from omni.sdk import Applied, Skip, denoisers


def apply(ctx, step):
    size = step.options["slice_size"]
    if size not in ("auto", "max") and not str(size).isdigit():
        raise Skip(f"slice_size {size!r} is not 'auto', 'max' or a number")  # before changing anything
    targets = [name for name, module in denoisers(ctx) if hasattr(module, "set_attention_slice")]
    if not targets:
        raise Skip("no denoiser implements set_attention_slice")
    ctx.pipe.enable_attention_slicing(int(size) if str(size).isdigit() else size)
    step.on_undo(ctx.pipe.disable_attention_slicing)  # registered as soon as the change is made
    return Applied(details={"slice_size": size, "denoisers": targets})
