"""Fixtures for the family tests: every family built tiny once per session, registered, with a worker context."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers import make_settings
from tests.models import builders

#: The registry the family tests run: one entry per family, plus the single-file, filtered and LoRA variants.
REGISTRY = """
default = "sd15"

[models.sd15]
source = "local"
path = "sd15"
family = "sd15"
width = 32
height = 32
steps = 2
guidance = 4.0
sampler = "dpm++_2m"
nsfw = "allow"
[models.sd15.loras.pixel]
file = "loras/pixel.safetensors"
weight = 1.0

[models.sd15-filtered]
source = "local"
path = "sd15"
family = "sd15"
width = 32
height = 32
steps = 2
guidance = 4.0
sampler = "dpm++_2m"

[models.sd15-file]
source = "single_file"
path = "checkpoints/sd15.safetensors"
config = "sd15-config"
family = "sd15"
width = 32
height = 32
steps = 2
guidance = 4.0
sampler = "dpm++_2m"
nsfw = "allow"

[models.sd15-fused]
source = "local"
path = "sd15"
family = "sd15"
width = 32
height = 32
steps = 2
guidance = 4.0
sampler = "dpm++_2m"
nsfw = "allow"
[models.sd15-fused.loras.pixel]
file = "loras/pixel.safetensors"
fuse = true

[models.sd2]
source = "local"
path = "sd2"
family = "sd2"
width = 32
height = 32
steps = 2
guidance = 5.0
sampler = "ddim"
nsfw = "allow"

[models.sdxl]
source = "local"
path = "sdxl"
family = "sdxl"
width = 32
height = 32
steps = 2
guidance = 5.0
sampler = "euler"

[models.sd3]
source = "local"
path = "sd3"
family = "sd3"
width = 32
height = 32
steps = 2
guidance = 4.5
sampler = "euler"

[models.flux]
source = "local"
path = "flux"
family = "flux"
width = 32
height = 32
steps = 2
guidance = 3.5
sampler = "euler"

[models.text-to-video-sd]
source = "local"
path = "text-to-video-sd"
family = "text-to-video-sd"
width = 32
height = 32
steps = 2
guidance = 7.0
sampler = "ddim"
frames = 4
fps = 8

[models.animatediff]
source = "local"
path = "animatediff"
family = "animatediff"
width = 32
height = 32
steps = 2
guidance = 7.0
sampler = "ddim"
frames = 4

[models.wan]
source = "local"
path = "wan"
family = "wan"
width = 32
height = 32
steps = 2
guidance = 5.0
sampler = "euler"
frames = 5
fps = 16
"""


@pytest.fixture(scope="session")
def family_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every family saved as a diffusers folder, an SD 1.x single file with its configs, a LoRA, the registry."""
    root = tmp_path_factory.mktemp("families")
    for family in builders.BUILDERS:
        builders.build(family, root / family)
    builders.single_file(root / "sd15", root / "checkpoints" / "sd15.safetensors")
    builders.configs_only(root / "sd15", root / "sd15-config")
    builders.lora(root / "sd15", root / "loras" / "pixel.safetensors")
    (root / "registry.toml").write_text(REGISTRY, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def family_registry(family_dir: Path) -> Path:
    return family_dir / "registry.toml"


@pytest.fixture
def family_settings(redis_url: str, data_dir: Path, family_registry: Path) -> object:
    return make_settings(redis_url, data_dir, registry_file=family_registry, pipeline_cache=16)


@pytest.fixture(scope="session")
def family_ctx(redis_server: str, data_dir: Path, family_registry: Path) -> Iterator[object]:
    """One worker context for the session: each family loads once, and stays resident."""
    from worker.context import WorkerContext

    client = redis.Redis.from_url(redis_server)
    settings = make_settings(redis_server, data_dir, registry_file=family_registry, pipeline_cache=16)
    yield WorkerContext.create(settings, client, name="family-worker")
    client.close()
