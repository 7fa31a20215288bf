"""The ``shapes`` model: a stock diffusers FluxPipeline trained on synthetic "a {colour} {shape} on a
{colour} background" scenes. Weights ship in ``weights/``; training code in :mod:`.train`."""

from __future__ import annotations

from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent / "weights"


def weights_dir() -> Path:
    """The shipped diffusers folder (what ``ModelSpec.build`` returns)."""
    if not (WEIGHTS / "model_index.json").is_file():
        from omni.sdk import ModelLoadError

        raise ModelLoadError(f"the shapes weights are missing from {WEIGHTS} (reinstall omni-model-shapes, or "
                             "train them: python -m omni_model_shapes.train)")
    return WEIGHTS
