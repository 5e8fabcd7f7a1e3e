"""An injectable clock: wall time plus an offset that tests advance, so token expiry needs no sleeping."""

from __future__ import annotations

import time


class Clock:
    """Seconds since the epoch, like `time.time()`, but `advance()` jumps it forward.

    Real time keeps flowing underneath, so the 3-second acknowledgement window still behaves naturally,
    while `advance(15 * 60)` expires every interaction token at once.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
