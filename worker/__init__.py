"""The worker: an RQ worker that keeps pipelines resident and turns job specs into encoded images."""

from __future__ import annotations

import os

# transformers warns at import about optional image backends we never use; keep worker logs about our work.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
