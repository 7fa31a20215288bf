"""Writing results: images -> PNG, video -> MP4 (imageio + imageio-ffmpeg) or GIF."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from omni.errors import UsageError

IMAGE_EXT = (".png",)
VIDEO_EXT = (".mp4", ".gif")


def _uint8(arr: np.ndarray) -> np.ndarray:
    return (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)


def check_output_path(path: str, video: bool) -> None:
    ext = Path(path).suffix.lower()
    allowed = VIDEO_EXT if video else IMAGE_EXT
    if ext not in allowed:
        kind = "video" if video else "image"
        raise UsageError(f"--output {path}: a {kind} model writes {' or '.join(allowed)} files")


def save(output: np.ndarray, path: str, *, video: bool, fps: int = 8) -> list[dict[str, Any]]:
    """Save every item of the batch; returns artifact records for the report."""
    check_output_path(path, video)
    target = Path(path)
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    items = list(output)
    artifacts = []
    for i, item in enumerate(items):
        p = target if len(items) == 1 else target.with_name(f"{target.stem}-{i}{target.suffix}")
        if video:
            import imageio.v2 as imageio

            frames = [_uint8(f) for f in item]
            if p.suffix.lower() == ".gif":
                imageio.mimsave(p, frames, duration=1000 / fps, loop=0)
            else:
                imageio.mimsave(p, frames, fps=fps, codec="libx264", macro_block_size=1)
            artifacts.append({"kind": "video", "path": os.fspath(p), "frames": len(frames),
                              "height": int(item.shape[1]), "width": int(item.shape[2])})
        else:
            from PIL import Image

            Image.fromarray(_uint8(item)).save(p)
            artifacts.append({"kind": "image", "path": os.fspath(p), "height": int(item.shape[0]),
                              "width": int(item.shape[1])})
    return artifacts
