"""Make a picture fit Discord's per-file upload limit: PNG as made, else WebP, else JPEG, else smaller.

Shared by the worker (results) and the bot (U buttons). Pillow only. The limit comes from the interaction's
`attachment_size_limit` (or the server's upload limit for channel messages); boosted servers allow more.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

from PIL import Image

log = logging.getLogger(__name__)

#: Discord's limit for a server without boosts, when no interaction told us better.
DEFAULT_LIMIT = 10 * 1024 * 1024


def _encodings(picture: Image.Image) -> Iterator[tuple[str, bytes]]:
    """Candidate encodings from best to smallest: lossless WebP, lossy WebP, then JPEG, each at falling quality."""
    rgb = picture.convert("RGB")
    for fmt, ext, options in (
        ("WEBP", "webp", {"lossless": True, "quality": 80, "method": 4}),
        ("WEBP", "webp", {"quality": 90, "method": 4}),
        ("WEBP", "webp", {"quality": 75, "method": 4}),
        ("JPEG", "jpg", {"quality": 85, "optimize": True}),
        ("WEBP", "webp", {"quality": 50, "method": 4}),
        ("JPEG", "jpg", {"quality": 60, "optimize": True}),
        ("JPEG", "jpg", {"quality": 40, "optimize": True}),
    ):
        out = io.BytesIO()
        rgb.save(out, format=fmt, **options)
        yield ext, out.getvalue()


def fit(filename: str, data: bytes, limit: int | None) -> tuple[str, bytes]:
    """`(filename, data)` unchanged when it fits `limit`, else re-encoded (and at last scaled down) to fit.

    The file's stem is kept and its extension follows the format. Raises ValueError if even a tiny JPEG cannot fit.
    """
    limit = limit or DEFAULT_LIMIT
    if len(data) <= limit:
        return filename, data
    stem = filename.rsplit(".", 1)[0]
    with Image.open(io.BytesIO(data)) as opened:
        picture = opened.convert("RGB")
    while True:
        for ext, encoded in _encodings(picture):
            if len(encoded) <= limit:
                log.info(
                    "re-encoded %s from %d to %d bytes (%s) to fit %d", filename, len(data), len(encoded), ext, limit
                )
                return f"{stem}.{ext}", encoded
        if min(picture.size) <= 16:
            raise ValueError(f"{filename} cannot be made smaller than {limit} bytes")
        picture = picture.resize(
            (max(1, picture.width * 3 // 4), max(1, picture.height * 3 // 4)), Image.Resampling.LANCZOS
        )


def crop_cell(data: bytes, index: int, count: int) -> bytes:
    """Image `index` (0-based) of a grid of `count` made by `worker.encoding.grid`, as PNG bytes.

    The grid is 2x2 for four images and one row otherwise; a single image is returned as it is.
    """
    if count <= 1:
        return data
    cols = 2 if count == 4 else count
    rows = (count + cols - 1) // cols
    with Image.open(io.BytesIO(data)) as opened:
        sheet = opened.convert("RGB")
    w, h = sheet.width // cols, sheet.height // rows
    x, y = (index % cols) * w, (index // cols) * h
    out = io.BytesIO()
    sheet.crop((x, y, x + w, y + h)).save(out, format="PNG")
    return out.getvalue()
