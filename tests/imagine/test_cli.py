"""imagine/cli.py: `imagine generate` on a machine with nothing running, and the small subcommands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from imagine.cli import main
from tests.helpers import ROOT, worker_env
from worker.encoding import read_parameters


@pytest.mark.slow
def test_generate_with_nothing_running_writes_pngs_with_parameters(tmp_path: Path, data_dir: Path, tiny_dir) -> None:
    env = worker_env("", data_dir)
    del env["REDIS_URL"]  # no Redis configured: the command starts its own, and a worker in-process
    out = tmp_path / "cat.png"
    proc = subprocess.run(
        [sys.executable, "-m", "imagine", "generate", "a red circle", "--negative", "blue", "--seed", "42",
         "--count", "4", "--steps", "3", "--model", "tiny", "--sampler", "euler", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = proc.stdout.split()
    assert written == [str(out)] + [str(tmp_path / f"cat-{i}.png") for i in range(1, 5)]
    with Image.open(out) as grid:
        assert grid.size == (256, 256)
    params = read_parameters((tmp_path / "cat-3.png").read_bytes())
    assert params == (
        "a red circle\nNegative prompt: blue\n"
        "Steps: 3, Sampler: Euler, CFG scale: 4, Seed: 44, Size: 32x32, Model: tiny"
    )
    assert "seed 42" in proc.stderr
    # The embedded server was stopped on exit, its data kept (append-only file) for next time.
    assert not (data_dir / "redis" / "server.json").exists()
    assert list((data_dir / "redis").rglob("*.aof*"))


def test_generate_refuses_an_invalid_request_naming_the_field(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "a red circle", "--steps", "1000"]) == 2
    assert "invalid request: steps: must be at most" in capsys.readouterr().err
    assert main(["generate", "   "]) == 2
    assert "prompt: is empty" in capsys.readouterr().err
    assert not (tmp_path / ".data").exists(), "nothing is started for a refused request"


def test_bad_size_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "x", "--size", "big"])
    assert exit_.value.code == 2 and "WxH" in capsys.readouterr().err


def test_models_list_shows_the_registry(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(tmp_path))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "* shapes" in out and "tiny" in out and "dpm++_2m" in out
