"""``omni verify`` support: a GGUF cell needs a file made from the very model being verified."""

from __future__ import annotations

import os


def prepare(model: str, workdir: str) -> dict:
    """Convert ``model``'s denoiser to a Q8_0 GGUF in ``workdir``; the verifier loads it back."""
    from omni_plugin_gguf.convert import convert_model

    path = os.path.join(workdir, f"{model.replace('/', '_')}-Q8_0.gguf")
    if not os.path.exists(path):
        convert_model(model, "Q8_0", path)
    return {"path": path}
