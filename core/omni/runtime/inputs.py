"""Image, mask and video inputs of a request: read, checked and described before anything runs.

An input may be a path, raw bytes (an HTTP upload), a PIL image or a numpy array. A bad one is a
``FieldError`` naming the field; a change omni makes to an input (an alpha channel dropped, a mask
converted to one channel) is returned as a note for the report — never silent."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

from omni.errors import FieldError

IMAGE_MODES = ("RGB", "RGBA", "L", "LA", "P")
MAX_INPUT_PIXELS = 64 * 2**20  # refuse decompression bombs before decoding (PIL's own limit is a warning)


@dataclass
class Inputs:
    """The checked inputs of one request (PIL images / frame lists) and the notes about them."""

    image: Any = None
    mask: Any = None
    video: list[Any] | None = None
    strength: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.image is None and self.mask is None and self.video is None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.image is not None:
            out["image"] = {"size": list(self.image.size), "mode": self.image.mode}
        if self.mask is not None:
            out["mask"] = {"size": list(self.mask.size), "mode": self.mask.mode}
        if self.video is not None:
            out["video"] = {"frames": len(self.video), "size": list(self.video[0].size)}
        if self.strength is not None:
            out["strength"] = self.strength
        return out


def open_image(param: str, value: Any) -> Any:
    """A PIL image (mode unchanged) from a path, bytes, a PIL image or an array, with the checks every
    input gets: an unreadable file or one over ``MAX_INPUT_PIXELS`` (a decompression bomb, refused
    before decoding) is a ``FieldError`` naming ``param``."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(value, Image.Image):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # numpy array, HxWxC in [0, 1] or uint8
        import numpy as np

        arr = np.asarray(value)
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
            raise FieldError(param, f"an array must be HxW or HxWx(1|3|4), not shape {tuple(arr.shape)}")
        if arr.dtype != np.uint8:
            if not np.isfinite(arr).all():
                raise FieldError(param, "the array holds NaN or infinite values")
            arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
        return Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    if isinstance(value, (bytes, bytearray)):
        source: Any = io.BytesIO(bytes(value))
        where = "the upload"
    elif isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if not os.path.isfile(path):
            raise FieldError(param, f"{path} is not a file" if os.path.exists(path) else f"{path} does not exist")
        source, where = path, path
    else:
        raise FieldError(param, f"expected a path, bytes, a PIL image or an array, not {type(value).__name__}")
    try:
        img = Image.open(source)
        if img.size[0] * img.size[1] > MAX_INPUT_PIXELS:
            raise FieldError(param, f"{where} is {img.size[0]}x{img.size[1]}, over the {MAX_INPUT_PIXELS} pixel limit")
        img.load()
    except FieldError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise FieldError(param, f"cannot read {where} as an image ({type(exc).__name__})") from None
    return img


def load_image(param: str, value: Any, notes: list[str]) -> Any:
    """An RGB PIL image; other modes are converted with a note, unusual ones refused."""
    img = open_image(param, value)
    if img.mode not in IMAGE_MODES:
        raise FieldError(param, f"image mode {img.mode} is not supported (use RGB, RGBA, L or P)")
    if img.mode != "RGB":
        notes.append(f"{param}: {img.mode} image converted to RGB" + (" (alpha dropped)" if "A" in img.mode else ""))
        img = img.convert("RGB")
    return img


def load_mask(value: Any, image: Any, notes: list[str]) -> Any:
    """A one-channel mask of the image's size (white = repaint)."""
    mask = open_image("mask", value)
    if mask.mode not in ("L", "1", "RGB", "RGBA", "LA", "P"):
        raise FieldError("mask", f"mask mode {mask.mode} is not supported (use L, 1 or RGB)")
    if image is not None and mask.size != image.size:
        raise FieldError("mask", f"the mask is {mask.size[0]}x{mask.size[1]} but the image is "
                                 f"{image.size[0]}x{image.size[1]}")
    if mask.mode != "L":
        notes.append(f"mask: {mask.mode} mask converted to one channel (L)")
        mask = mask.convert("L")
    return mask


def load_video(value: Any, notes: list[str]) -> list[Any]:
    """Frames of a video file (MP4/GIF, read with imageio) or a list of images."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise FieldError("video", "the frame list is empty")
        frames = [load_image("video", v, notes) for v in value]
    else:
        import imageio.v3 as iio
        from PIL import Image

        if isinstance(value, (str, os.PathLike)) and not os.path.isfile(os.fspath(value)):
            raise FieldError("video", f"{os.fspath(value)} does not exist")
        try:
            data = iio.imread(bytes(value) if isinstance(value, (bytes, bytearray)) else os.fspath(value), index=None)
        except Exception as exc:  # noqa: BLE001 - imageio raises many types for a bad file
            raise FieldError("video", f"cannot read the video ({type(exc).__name__})") from None
        frames = [Image.fromarray(f).convert("RGB") for f in data]
        if not frames:
            raise FieldError("video", "the video has no frames")
    if len({f.size for f in frames}) > 1:
        raise FieldError("video", "the frames differ in size")
    return frames


def read_inputs(*, image: Any = None, mask: Any = None, video: Any = None, strength: Any = None) -> Inputs:
    """Check a request's inputs (before any model is loaded when called from the CLI)."""
    out = Inputs()
    if mask is not None and image is None:
        raise FieldError("mask", "a mask needs an image to repaint")
    if image is not None and video is not None:
        raise FieldError("video", "give an image or a video, not both")
    if image is not None:
        out.image = load_image("image", image, out.notes)
    if mask is not None:
        out.mask = load_mask(mask, out.image, out.notes)
    if video is not None:
        out.video = load_video(video, out.notes)
    if strength is not None:
        try:
            value = float(strength)
        except (TypeError, ValueError):
            raise FieldError("strength", f"must be a number in (0, 1], not {str(strength)[:40]!r}") from None
        if not 0.0 < value <= 1.0:
            raise FieldError("strength", f"must be in (0, 1], got {value}")
        if out.image is None and out.video is None:
            raise FieldError("strength", "applies to an image or video input")
        out.strength = value
    return out
