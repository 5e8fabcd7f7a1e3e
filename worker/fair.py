"""The workers' side of fair order: RQ's worker dequeues through `imagine.fair_queue.FairQueue`, which pops the fair
head (`imagine.fair`) and parks a paused server's job that RQ put back on its own list (a retry) instead of running
it. Kept here as the worker's import of it.
"""

from __future__ import annotations

from imagine.fair_queue import FairQueue

__all__ = ["FairQueue"]
