"""imagine/settings.py: read from the environment, secrets masked, URLs redacted for logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagine.settings import Settings, redact_url


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@db:6379/0")
    monkeypatch.setenv("IMAGINE_MAX_STEPS", "30")
    monkeypatch.setenv("IMAGINE_DATA_DIR", "/srv/imagine")
    monkeypatch.setenv("DISCORD_TOKEN", "tok.en.value")
    settings = Settings(_env_file=None)
    assert settings.redis_url_value() == "redis://:hunter2@db:6379/0"
    assert settings.limits().max_steps == 30
    assert settings.data_dir == Path("/srv/imagine")
    shown = repr(settings) + str(settings)
    assert "hunter2" not in shown and "tok.en.value" not in shown


def test_defaults_need_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "IMAGINE_REDIS_URL", "IMAGINE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.redis_url is None and settings.data_dir == Path(".data")
    assert settings.limits().max_count == 4


def test_env_example_documents_every_setting() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None) or [f"IMAGINE_{name.upper()}"]
        assert any(f"{alias}=" in example for alias in aliases), f"{name} is not in .env.example"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:pw@host:6380/1", "redis://***@host:6380/1"),
        ("rediss://user:pw@host/0", "rediss://***@host/0"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_env_example_as_dot_env_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("IMAGINE_") or name in ("REDIS_URL", "DISCORD_TOKEN"):
            monkeypatch.delenv(name)
    example = Path(__file__).resolve().parents[2] / ".env.example"
    assert Settings(_env_file=example) == Settings(_env_file=None)
