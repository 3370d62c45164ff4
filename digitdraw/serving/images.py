"""Decode an image file a user hands us (an upload, a phone photo, a path) into a plain uint8 array.

Everything past this module works on NumPy arrays; everything hostile about
files stops here, as a ``ValueError`` with one sentence a person can act on:
a truncated or unreadable file, an image larger than ``MAX_PIXELS`` (checked
from the header, before a single pixel is decoded, so a decompression bomb
costs nothing), or an empty one. What decodes is brought to one of three
shapes: (H, W) grayscale, (H, W, 3) RGB or (H, W, 4) RGBA, 8 bits per
channel. 16-bit images are scaled down to 8 bits, CMYK, palette and other
modes are converted, an animation gives its first frame, and a phone photo
is turned upright by its EXIF orientation, as the phone showed it.

Pillow does the decoding. Its own bomb check (``Image.MAX_IMAGE_PIXELS``) is
a process-wide setting shared with every other user of Pillow, so this
module keeps a limit of its own and leaves Pillow's alone.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# About 50 megapixels: a 48-megapixel phone photo decodes, a decompression bomb does not.
MAX_PIXELS = 50_000_000
# The formats the app's upload widget offers; the library reads whatever Pillow reads.
UPLOAD_TYPES = ("png", "jpg", "jpeg", "webp", "bmp")

_KEEP_MODES = {"L", "RGB", "RGBA"}


def load_image(source: bytes | str | Path | BinaryIO, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A file's first frame, upright, as uint8 (H, W), (H, W, 3) or (H, W, 4); ValueError if it cannot be."""
    name = str(source) if isinstance(source, str | Path) else "the image"
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            # Our own limit below decides; Pillow's warning for large images would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                width, height = image.size
                if width * height > max_pixels:
                    size = f"{width}x{height} pixels"
                    raise ValueError(f"{name} is too large ({size}); expected at most {max_pixels:,} pixels")
                image.seek(0)  # An animation: its first frame.
                image.load()
                pixels = _to_array(ImageOps.exif_transpose(image))
    except FileNotFoundError as error:
        raise ValueError(f"{name} does not exist") from error
    except IsADirectoryError as error:
        raise ValueError(f"{name} is a folder, not an image") from error
    except PermissionError as error:
        raise ValueError(f"{name} cannot be opened: permission denied") from error
    except Image.DecompressionBombError as error:
        # Pillow refuses images twice its own limit in open(), before ours is checked.
        raise ValueError(f"{name} is too large; expected at most {max_pixels:,} pixels ({error})") from error
    except UnidentifiedImageError as error:
        raise ValueError(f"{name} is not an image that can be read ({error})") from error
    except ValueError as error:
        if str(error).startswith(name):
            raise  # Ours: too many pixels.
        # Pillow's decoders report some damage as ValueError ("tile cannot extend outside image").
        raise ValueError(f"{name} is truncated or damaged ({error})") from error
    except (OSError, SyntaxError, EOFError) as error:
        # Pillow reports truncated and corrupt data as OSError (and a few decoders as SyntaxError).
        raise ValueError(f"{name} is truncated or damaged ({error})") from error
    if pixels.size == 0:
        raise ValueError(f"{name} has no pixels")
    return pixels


def _to_array(image: Image.Image) -> np.ndarray:
    """The decoded image as an 8-bit array in one of the three kept modes."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        # 16- and 32-bit grayscale: scale the type's range (a float image its own range) to 0-255.
        values = np.asarray(image, dtype=np.float64)
        if mode == "F":
            low, high = float(np.nanmin(values)), float(np.nanmax(values))
            values = (values - low) / (high - low) * 255 if high > low else np.zeros_like(values)
        else:
            values = values / 257.0
        return np.clip(np.rint(np.nan_to_num(values)), 0, 255).astype(np.uint8)
    if mode in ("1", "LA", "La") or mode.startswith("L;"):
        image = image.convert("LA" if "A" in mode else "L")
        if image.mode == "LA":
            image = image.convert("RGBA")
    elif mode in ("P", "PA"):
        image = image.convert("RGBA")
    elif mode not in _KEEP_MODES:
        image = image.convert("RGBA" if "A" in mode else "RGB")  # CMYK, YCbCr, LAB, HSV, RGBa, RGBX...
    pixels = np.array(image, dtype=np.uint8)  # A copy: writable, unlike a view of the decoded image.
    if pixels.ndim == 3 and pixels.shape[2] == 4 and pixels[:, :, 3].min() == 255:
        pixels = pixels[:, :, :3]  # An alpha channel that hides nothing (most palette files).
    return np.ascontiguousarray(pixels)
