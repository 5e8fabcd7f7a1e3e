"""The model registry: a TOML file mapping a model name to where its weights are and how it is run by default.

Torch-free, so listing models and resolving defaults costs nothing; `models.loader` does the loading.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from imagine.contract import MODEL_NAME, ModelDefaults, ModelInfo, Sampler

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_FILE = PACKAGE_DIR / "registry.toml"


class UnknownModel(LookupError):
    """A job named a model that the registry does not have."""


class ModelEntry(BaseModel):
    """One model: its source, pipeline family and defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    source: Literal["local", "single_file", "hub", "tiny"]
    path: str | None = None
    id: str | None = None
    family: Literal["sd", "sdxl", "auto"] = "auto"
    width: int = Field(ge=8)
    height: int = Field(ge=8)
    steps: int = Field(ge=1)
    guidance: float = Field(ge=0)
    sampler: Sampler
    display_scale: int = Field(default=1, ge=1, le=8)
    fallback: str | None = None

    @model_validator(mode="after")
    def _source_fields(self) -> ModelEntry:
        if not MODEL_NAME.match(self.name):
            raise ValueError(f"model name {self.name!r} is not lowercase letters, digits, '_', '-', '.'")
        if self.source in ("local", "single_file") and not self.path:
            raise ValueError(f"model {self.name!r}: source {self.source!r} needs a path")
        if self.source == "hub" and not self.id:
            raise ValueError(f"model {self.name!r}: source 'hub' needs an id")
        return self

    @property
    def defaults(self) -> ModelDefaults:
        return ModelDefaults(
            width=self.width, height=self.height, steps=self.steps, guidance=self.guidance, sampler=self.sampler
        )

    def location(self, data_dir: Path) -> Path | str:
        """Where the weights are: a local path, or the hub id."""
        if self.source == "hub":
            assert self.id is not None
            return self.id
        if self.source == "tiny":
            return (Path(data_dir) / "models" / self.name).resolve()
        assert self.path is not None
        return Path(self.path)

    def available(self, data_dir: Path) -> bool:
        """Whether the weights can be had without a download (a tiny model can always be built)."""
        if self.source in ("hub", "tiny"):
            return True
        where = Path(self.location(data_dir))
        if self.source == "local":
            return (where / "model_index.json").is_file()
        return where.is_file()


class Registry(BaseModel):
    """All entries plus the default's name."""

    model_config = ConfigDict(frozen=True)

    default: str
    models: dict[str, ModelEntry]

    @model_validator(mode="after")
    def _names_exist(self) -> Registry:
        if self.default not in self.models:
            raise ValueError(f"default model {self.default!r} is not in the registry")
        for entry in self.models.values():
            if entry.fallback is not None and entry.fallback not in self.models:
                raise ValueError(f"model {entry.name!r}: fallback {entry.fallback!r} is not in the registry")
        return self

    def get(self, name: str) -> ModelEntry:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise UnknownModel(f"unknown model {name!r}; known models: {known}") from None

    def resolve(self, name: str | None, data_dir: Path) -> ModelEntry:
        """The entry to run for `name` (None: the default), following `fallback` when weights are missing."""
        entry = self.get(name or self.default)
        seen = {entry.name}
        while not entry.available(data_dir) and entry.fallback is not None:
            log.warning(
                "model %r has no weights at %s; using %r instead", entry.name, entry.location(data_dir), entry.fallback
            )
            entry = self.get(entry.fallback)
            if entry.name in seen:
                break
            seen.add(entry.name)
        return entry

    def infos(self, data_dir: Path) -> list[ModelInfo]:
        """What workers advertise to the bot."""
        return [
            ModelInfo(
                name=e.name,
                description=e.description,
                defaults=e.defaults,
                display_scale=e.display_scale,
                available=e.available(data_dir),
                default=e.name == self.default,
            )
            for e in self.models.values()
        ]


def load(path: Path | None = None) -> Registry:
    """Read the registry file (the packaged `registry.toml` unless `path` is given)."""
    path = Path(path) if path is not None else DEFAULT_FILE
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    models = {}
    for name, fields in raw.get("models", {}).items():
        if fields.get("path") and not Path(fields["path"]).is_absolute():
            # Relative paths are relative to the registry file (for the packaged one: the models package).
            fields = {**fields, "path": str(path.resolve().parent / fields["path"])}
        models[name] = ModelEntry(name=name, **fields)
    return Registry(default=raw.get("default", next(iter(models), "")), models=models)
