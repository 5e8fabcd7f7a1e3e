"""imagine: the torch-free core shared by the Discord bot and the workers (settings, contract, Redis keys)."""

from __future__ import annotations

__version__ = "0.1.0"
