"""Writing results: images -> PNG, video -> MP4 (imageio + imageio-ffmpeg) or GIF. Every file is
written under a temporary name in its folder and renamed when complete, so a reader (``omni serve``,
a script watching the folder) never sees a partial file."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from omni.errors import OmniError, UsageError

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


class OutputError(OmniError):
    """A result could not be written (disk full, permissions changed during the run, writer failed)."""


def check_target(path: str, what: str, *, force: bool) -> None:
    """Before any work is done: ``path`` can be written. Not a folder, not under a plain file, the
    folder it goes in (or the nearest existing one above it: missing folders are created) accepts a
    new file, and an existing file is replaced only with ``force`` (one rule for every command that
    writes a file: ``omni run -o``/``--report``, ``omni convert``)."""
    target = Path(os.path.abspath(os.path.expanduser(path)))
    if not path.strip():
        raise UsageError(f"{what} is empty; name the file to write")
    if path.endswith((os.sep, "/")) or target.is_dir():
        raise UsageError(f"{what} {path} is a folder; name the file to write")
    if target.exists() or target.is_symlink():
        if not force:
            raise UsageError(f"{what} {path} exists; pass --force to overwrite it")
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{what} {path}: {folder} is a file, not a folder")
    try:  # a real write: permission bits say nothing for root or on a read-only file system
        fd, probe = tempfile.mkstemp(prefix=".omni-probe-", dir=folder)
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot write in {folder} ({exc.strerror or type(exc).__name__})") from None
    os.close(fd)
    os.unlink(probe)


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
    artifact records for the report. A failed write raises :class:`OutputError` naming what was
    written before it; nothing that was not written is reported."""
    check_output_path(path, video)
    target = Path(path)
    items = list(output)
    artifacts: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        p = target if len(items) == 1 else target.with_name(f"{target.stem}-{i}{target.suffix}")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            artifacts.append(_write(item, p, video=video, fps=fps))
        except (OSError, RuntimeError, ValueError) as exc:
            done = f"wrote {', '.join(a['path'] for a in artifacts)}; " if artifacts else ""
            raise OutputError(f"{done}writing {p} failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    return artifacts


def _write(item: np.ndarray, p: Path, *, video: bool, fps: int) -> dict[str, Any]:
    if video:
        import imageio.v2 as imageio

        frames: list[Any] = [_uint8(f) for f in item]
        with atomic_path(p) as tmp:
            if p.suffix.lower() == ".gif":
                imageio.mimsave(tmp, frames, duration=1000 / fps, loop=0)
            else:
                imageio.mimsave(tmp, frames, fps=fps, codec="libx264", macro_block_size=1)
            if not tmp.is_file() or tmp.stat().st_size == 0:
                raise OSError(f"the {p.suffix[1:]} writer produced no file")
        return {"kind": "video", "path": os.fspath(p), "frames": len(frames), "height": int(item.shape[1]),
                "width": int(item.shape[2])}
    from PIL import Image

    with atomic_path(p) as tmp:
        Image.fromarray(_uint8(item)).save(tmp)
    return {"kind": "image", "path": os.fspath(p), "height": int(item.shape[0]), "width": int(item.shape[1])}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
