"""`python -m imagine` is the `imagine` command."""

from __future__ import annotations

import sys

from imagine.cli import main

sys.exit(main())
