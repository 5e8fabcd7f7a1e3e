"""models/registry.py: the packaged registry, defaults, fallback when weights are missing, bad entries."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from models import registry
from models.registry import UnknownModel


def test_the_packaged_registry_defaults_to_the_shipped_model(tmp_path: Path) -> None:
    reg = registry.load()
    assert reg.default == "shapes"
    shapes = reg.get("shapes")
    assert (shapes.width, shapes.height, shapes.steps, shapes.guidance, shapes.sampler) == (32, 32, 20, 4.0, "dpm++_2m")
    assert shapes.display_scale == 4 and shapes.fallback == "tiny"
    assert shapes.location(tmp_path) == registry.PACKAGE_DIR / "shapes" / "weights"
    assert reg.get("tiny").location(tmp_path) == (tmp_path / "models" / "tiny").resolve()


def test_a_model_without_weights_falls_back_with_a_warning(tmp_path: Path, caplog) -> None:
    file = tmp_path / "registry.toml"
    file.write_text(
        'default = "big"\n'
        '[models.big]\nsource = "local"\npath = "nowhere"\nwidth = 64\nheight = 64\nsteps = 30\nguidance = 7.0\n'
        'sampler = "euler"\nfallback = "tiny"\n'
        '[models.tiny]\nsource = "tiny"\nwidth = 32\nheight = 32\nsteps = 4\nguidance = 4.0\nsampler = "ddim"\n'
    )
    reg = registry.load(file)
    assert reg.get("big").location(tmp_path) == tmp_path / "nowhere"  # relative to the registry file
    assert not reg.get("big").available(tmp_path)
    assert reg.resolve(None, tmp_path).name == "tiny"
    assert "has no weights" in caplog.text
    (tmp_path / "nowhere").mkdir()
    (tmp_path / "nowhere" / "model_index.json").write_text("{}")
    assert reg.resolve(None, tmp_path).name == "big"
    infos = {i.name: i for i in reg.infos(tmp_path)}
    assert infos["big"].default and infos["big"].defaults.steps == 30 and infos["big"].available


def test_unknown_models_are_named_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownModel, match=r"unknown model 'sdxl'.*shapes, tiny"):
        registry.load().resolve("sdxl", tmp_path)


@pytest.mark.parametrize(
    "body",
    [
        '[models.x]\nsource = "local"\nwidth = 8\nheight = 8\nsteps = 1\nguidance = 1\nsampler = "euler"\n',
        '[models.x]\nsource = "hub"\nwidth = 8\nheight = 8\nsteps = 1\nguidance = 1\nsampler = "euler"\n',
        '[models.x]\nsource = "tiny"\nwidth = 8\nheight = 8\nsteps = 1\nguidance = 1\nsampler = "k_lms"\n',
        '[models.X]\nsource = "tiny"\nwidth = 8\nheight = 8\nsteps = 1\nguidance = 1\nsampler = "euler"\n',
        'default = "y"\n[models.x]\nsource = "tiny"\nwidth = 8\nheight = 8\nsteps = 1\nguidance = 1\n'
        'sampler = "euler"\n',
    ],
)
def test_bad_entries_are_refused(tmp_path: Path, body: str) -> None:
    file = tmp_path / "registry.toml"
    file.write_text(body)
    with pytest.raises(ValidationError):
        registry.load(file)
