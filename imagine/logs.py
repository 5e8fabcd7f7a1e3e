"""Logging for every `imagine` command: plain text for a terminal, or JSON lines (`IMAGINE_LOG_FORMAT=json`).

JSON lines are what log collectors (Loki, CloudWatch, `docker logs | jq`) read without parsing rules: one object
per record with its time, level, logger and message, the exception when there is one, and any `extra=` fields.
Messages are the same ones the text format prints, so nothing secret appears in one that the other hides.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: LogRecord attributes that are not `extra=` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
        return json.dumps(data, ensure_ascii=False)


def configure(level: int, fmt: str = "text") -> None:
    """Set up the root logger once for a command (like `logging.basicConfig`, a no-op when it is already set up)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
