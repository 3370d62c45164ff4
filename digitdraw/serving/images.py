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
# The formats the app's upload widget offers, by name and as Pillow knows them: an upload is decoded
# only as one of these, whatever its name says. The library reads whatever Pillow reads.
UPLOAD_TYPES = ("png", "jpg", "jpeg", "webp", "bmp")
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")

_KEEP_MODES = {"L", "RGB", "RGBA"}


def load_image(
    source: bytes | str | Path | BinaryIO,
    max_pixels: int = MAX_PIXELS,
    formats: tuple[str, ...] | None = None,
) -> np.ndarray:
    """A file's first frame, upright, as uint8 (H, W), (H, W, 3) or (H, W, 4); ValueError if it cannot be.

    ``formats`` names the only formats (Pillow's names) it may be decoded as; None: any Pillow reads.
    """
    name = str(source) if isinstance(source, str | Path) else "the image"
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        special = isinstance(source, str | Path) and Path(source).exists() and not Path(source).is_file()
        if special and not Path(source).is_dir():  # A folder has its own sentence below.
            # A named pipe or a device would be read until it ends, which it may never do.
            raise ValueError(f"{name} is not a regular file")
        with warnings.catch_warnings():
            # Our own limit below decides; Pillow's warning for large images would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source, formats=formats) as image:
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
        # Pillow's own message names the file object it was given, which means nothing to a person.
        expected = f"expected {', '.join(formats)}" if formats else "its format is not one Pillow reads"
        raise ValueError(f"{name} is not an image that can be read ({expected})") from error
    except ValueError as error:
        if str(error).startswith(name):
            raise  # Ours: too many pixels.
        # Pillow's decoders report some damage as ValueError ("tile cannot extend outside image").
        raise ValueError(f"{name} is truncated or damaged ({error})") from error
    except (OSError, SyntaxError, EOFError) as error:
        # Pillow reports truncated and corrupt data as OSError (and a few decoders as SyntaxError).
        raise ValueError(f"{name} is truncated or damaged ({error})") from error
    except MemoryError:
        raise
    except Exception as error:
        # A damaged file can make a rarer decoder fail in its own way (a DDS's NotImplementedError, a
        # TIFF tag's TypeError): whatever it is, it is the file's fault.
        raise ValueError(f"{name} is truncated or damaged ({type(error).__name__})") from error
    if pixels.size == 0:
        raise ValueError(f"{name} has no pixels")
    return pixels


def _to_array(image: Image.Image) -> np.ndarray:
    """The decoded image as an 8-bit array in one of the three kept modes."""
    mode = image.mode
    if mode == "F":
        # 32-bit float grayscale: its own range to 0-255, in place, in float64: a float32 range can
        # overflow (3e38 - -3e38) or be too small to divide by (1e-45).
        values = np.array(image, dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.any():
            return np.zeros(values.shape, np.uint8)
        low, high = float(values[finite].min()), float(values[finite].max())
        values[~finite] = low
        values -= low
        values *= 255 / (high - low) if high > low else 0.0
        return np.rint(values, out=values).astype(np.uint8)
    if mode.startswith("I"):
        # 16- and 32-bit integer grayscale: 0-65535 to 0-255, rounded (v * 255 / 65535 never ties), in
        # integers rather than in float64 copies of the picture.
        values = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
        values *= 255
        values += 32767
        values //= 65535
        return values.astype(np.uint8)
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
