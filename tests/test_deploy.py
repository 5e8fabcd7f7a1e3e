"""docker-compose.yml, Dockerfile and .ci/run: the parts of deployment that a test can check without Docker."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.helpers import ROOT


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_redis_that_persists_never_evicts_and_needs_a_password() -> None:
    redis = compose()["services"]["redis"]
    joined = " ".join(redis["command"])
    assert "--appendonly yes" in joined and "--maxmemory-policy noeviction" in joined
    assert (
        '--maxmemory "$$REDIS_MAXMEMORY"' in joined
        and redis["environment"]["REDIS_MAXMEMORY"] == "${REDIS_MAXMEMORY:-2gb}"
    )
    assert "--appendfsync everysec" in joined
    assert '--requirepass "$$REDIS_PASSWORD"' in joined and "REDIS_PASSWORD is not set" in joined
    assert redis["environment"]["REDIS_PASSWORD"] == "${REDIS_PASSWORD:-}"


def test_redis_is_reachable_only_on_the_compose_network() -> None:
    spec = compose()
    redis = spec["services"]["redis"]
    assert "ports" not in redis and redis["networks"] == ["backend"]
    assert spec["networks"]["backend"]["internal"] is True
    for name in ("bot", "worker"):
        service = spec["services"][name]
        assert "backend" in service["networks"]
        assert service["environment"]["REDIS_URL"] == "redis://:${REDIS_PASSWORD:-}@redis:6379/0"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port  # metrics on the host's loopback only


def test_compose_runs_the_bot_and_a_gpu_worker_with_the_models_volume() -> None:
    services = compose()["services"]
    bot, worker = services["bot"], services["worker"]
    assert bot["build"] == "." and bot["command"] == ["imagine", "bot"]
    assert bot["environment"]["DISCORD_TOKEN"] == "${DISCORD_TOKEN:-}"  # from the environment only
    assert worker["build"] == "." and worker["command"] == ["imagine", "worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]}
    assert "${IMAGINE_MODELS_DIR:-./my-models}:/models:ro" in worker["volumes"]
    assert worker["environment"]["IMAGINE_WORKER_METRICS_PORT"] == "9101"
    assert bot["environment"]["IMAGINE_BOT_METRICS_PORT"] == "9100"
    assert services["rq-dashboard"]["profiles"] == ["dashboard"]
    # Every pulled image is pinned to a version, and the dashboard refuses to start without a password.
    for name, service in services.items():
        if "image" in service and "build" not in service:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name
    assert "RQ_DASHBOARD_PASSWORD is not set" in " ".join(services["rq-dashboard"]["entrypoint"])
    text = (ROOT / "docker-compose.yml").read_text()
    assert "# worker-gpu1:" in text and "One worker per GPU" in text  # documented, ready to uncomment


def _compose_cmd() -> list[str] | None:
    """docker-compose, or `docker compose` where the docker CLI has its compose plugin (a bare CLI has not)."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.mark.skipif(_compose_cmd() is None, reason="no compose here")
@pytest.mark.parametrize("extra", [[], ["--profile", "dashboard"]])
def test_compose_config_validates(extra: list[str]) -> None:
    cmd = _compose_cmd()
    assert cmd is not None
    # No .env needed to validate: every variable has a default (Redis itself refuses to start without a password).
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_PASSWORD", "DISCORD_TOKEN")}
    proc = subprocess.run([*cmd, *extra, "config", "-q"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    shown = subprocess.run([*cmd, *extra, "config"], cwd=ROOT, capture_output=True, text=True, env=env).stdout
    assert "device_ids" in shown and "noeviction" in shown


def test_dockerfile_installs_pinned_torch_then_the_lock_then_the_project() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    torch_line = next(i for i, line in enumerate(lines) if "torch==2.13.0" in line)
    lock_line = next(i for i, line in enumerate(lines) if "-r requirements/worker.txt" in line)
    project_line = next(i for i, line in enumerate(lines) if "pip install --no-deps ." in line)
    assert torch_line < lock_line < project_line
    assert "EXPOSE 9100 9101" in lines


def test_secrets_stay_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored


def test_ci_fails_when_no_tests_ran() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "make test" in script and "no tests ran" in script
