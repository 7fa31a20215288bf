"""Writing results: images -> PNG, video -> MP4 (imageio + imageio-ffmpeg) or GIF. Every file is
written under a temporary name in its folder and renamed when complete, so a reader (``omni serve``,
a script watching the folder) never sees a partial file."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from omni.errors import UsageError

IMAGE_EXT = (".png",)
VIDEO_EXT = (".mp4", ".gif")
PARTIAL_GLOB = ".*.partial-*"  # what a writer killed mid-file leaves behind (atomic_path)


def _uint8(arr: np.ndarray) -> np.ndarray:
    return (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)


def check_output_path(path: str, video: bool) -> None:
    ext = Path(path).suffix.lower()
    allowed = VIDEO_EXT if video else IMAGE_EXT
    if ext not in allowed:
        kind = "video" if video else "image"
        raise UsageError(f"--output {path}: a {kind} model writes {' or '.join(allowed)} files")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix, so writers pick the same format); on
    success it is renamed to ``path``, on failure removed."""
    tmp = path.with_name(f".{path.stem}.partial-{secrets.token_hex(4)}{path.suffix}")  # matches PARTIAL_GLOB
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def save(output: np.ndarray, path: str, *, video: bool, fps: int = 8) -> list[dict[str, Any]]:
    """Save every item of the batch (each file written whole, then renamed into place); returns
    artifact records for the report."""
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
            with atomic_path(p) as tmp:
                if p.suffix.lower() == ".gif":
                    imageio.mimsave(tmp, frames, duration=1000 / fps, loop=0)
                else:
                    imageio.mimsave(tmp, frames, fps=fps, codec="libx264", macro_block_size=1)
            artifacts.append({"kind": "video", "path": os.fspath(p), "frames": len(frames),
                              "height": int(item.shape[1]), "width": int(item.shape[2])})
        else:
            from PIL import Image

            with atomic_path(p) as tmp:
                Image.fromarray(_uint8(item)).save(tmp)
            artifacts.append({"kind": "image", "path": os.fspath(p), "height": int(item.shape[0]),
                              "width": int(item.shape[1])})
    return artifacts
