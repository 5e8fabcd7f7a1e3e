"""Checking a picture a member uploads before anything decodes it in full, and turning it into a plain PNG.

An upload is untrusted bytes: it may not be an image, may be cut short, may be a decompression bomb (a few KB that
claim gigapixels), may be far too big, or may be animated. Each of those gets its own `ImageRefused`, whose message
is fit to show the member as it is. Only the header is read before the size check; pixels are decoded only once
the image is known to be small enough, and the result is re-encoded as an RGB PNG no larger than `max_side`, so
what the worker reads back from Redis is always a tame, still, bounded picture. Pillow only (the bot never imports
torch).
"""

from __future__ import annotations

import io
import logging
import math
import warnings

from PIL import Image, ImageFile, UnidentifiedImageError

log = logging.getLogger(__name__)

#: Largest upload taken, in bytes (checked on Discord's declared size before downloading, and on the bytes).
MAX_BYTES = 10 * 1024 * 1024
#: Largest picture taken, in pixels: anything more is a bomb or a photo far beyond any model's size.
MAX_PIXELS = 40_000_000
#: Longest side of the PNG kept for the worker (models work at 1024 or less).
KEEP_SIDE = 2048
#: Formats read (what Discord shows inline); anything else is refused as "not an image".
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")


class ImageRefused(ValueError):
    """An upload that cannot be used; the message says why, for the member."""


def _mb(size: int) -> str:
    """Megabytes to one decimal, rounded up (a file just over the limit never reads as equal to it)."""
    return f"{math.ceil(size / (1024 * 1024) * 10) / 10:.1f} MB"


def check_size(size: int | None, max_bytes: int = MAX_BYTES) -> None:
    """Refuse a file by its declared size, before downloading it."""
    if size is not None and size > max_bytes:
        raise ImageRefused(f"that file is {_mb(size)}; the most I take is {_mb(max_bytes)}.")


def sanitize(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> bytes:
    """A still RGB PNG of the uploaded picture (at most `KEEP_SIDE` on its longer side), or `ImageRefused`."""
    check_size(len(data), max_bytes)
    if not data:
        raise ImageRefused("that file is empty.")
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a cut-off file is refused, never half-drawn
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as opened:
                _check_header(opened, max_pixels)
                opened.load()
                picture = opened.convert("RGB")
    except UnidentifiedImageError:
        raise ImageRefused("that file is not an image I can read (PNG, JPEG, WebP, GIF or BMP).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("that image claims more pixels than I will decode.") from None
    except ImageRefused:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        log.info("refused an upload that does not decode: %s", exc)
        raise ImageRefused("that image is damaged or incomplete (it does not decode); try saving it again.") from None
    if max(picture.size) > KEEP_SIDE:
        picture.thumbnail((KEEP_SIDE, KEEP_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def _check_header(opened: Image.Image, max_pixels: int) -> None:
    width, height = opened.size
    if width < 1 or height < 1:
        raise ImageRefused("that image has no pixels.")
    if width * height > max_pixels:
        raise ImageRefused(
            f"that image is {width}x{height} pixels; the most I take is {max_pixels // 1_000_000} megapixels."
        )
    if getattr(opened, "is_animated", False) or getattr(opened, "n_frames", 1) > 1:
        raise ImageRefused("animated images are not supported; upload a still picture.")
