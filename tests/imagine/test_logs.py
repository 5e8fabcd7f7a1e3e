"""imagine/logs.py: JSON lines when asked, one object per record, with the exception and `extra=` fields."""

from __future__ import annotations

import json
import logging
import sys

from imagine.logs import JsonFormatter


def test_a_record_is_one_json_object() -> None:
    logger = logging.getLogger("imagine.test")
    record = logger.makeRecord("imagine.test", logging.WARNING, __file__, 1, "job %s failed", ("abc",), None)
    record.job_id = "abc"
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "warning" and data["logger"] == "imagine.test" and data["message"] == "job abc failed"
    assert data["job_id"] == "abc" and "ValueError: boom" in data["exc_info"]
    assert data["time"].endswith("Z")


def test_the_cli_logs_json_lines_when_asked(monkeypatch, tmp_path) -> None:
    from imagine import cli

    monkeypatch.setenv("IMAGINE_LOG_FORMAT", "json")
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(tmp_path))
    configured: list[dict] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: configured.append(kwargs))
    assert cli.main(["-v", "models", "check"]) == 0
    (handler,) = configured[0]["handlers"]
    assert isinstance(handler.formatter, JsonFormatter) and configured[0]["level"] == logging.INFO
