"""The model registry: a TOML file mapping a model name to where its weights are and how it is run by default.

An entry names its family (`models.families`: sd15, sd2, sdxl, sd3, flux, text-to-video-sd, animatediff, wan), its
source (a diffusers folder, one single-file checkpoint, a hub id), precision and device, defaults, limits, NSFW
policy and LoRAs. Torch-free, so listing models and resolving defaults costs nothing; `models.loader` loads them
and `models.check` says what is wrong with them without loading any weights.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from imagine.contract import MODEL_NAME, JobSpec, ModelDefaults, ModelInfo, Sampler, SpecError
from models import families
from models.families import Family

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_FILE = PACKAGE_DIR / "registry.toml"


class UnknownModel(LookupError):
    """A job named a model that the registry does not have."""


class Lora(BaseModel):
    """A LoRA a model offers: fused into the weights at load (always on), or chosen per job by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    file: str
    weight: float = Field(default=1.0, ge=-4, le=4)
    fuse: bool = False
    description: str = ""


class ModelLimits(BaseModel):
    """Bounds tighter than the server's for one model (a big model on a small card); unset: the server's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_side: int | None = Field(default=None, ge=8)
    max_pixels: int | None = Field(default=None, ge=64)
    max_steps: int | None = Field(default=None, ge=1)
    max_count: int | None = Field(default=None, ge=1)
    max_frames: int | None = Field(default=None, ge=1)


class ModelEntry(BaseModel):
    """One model: its source, pipeline family, precision and device, defaults, limits, NSFW policy and LoRAs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    source: Literal["local", "single_file", "hub", "tiny"]
    path: str | None = None
    id: str | None = None
    #: A family name (`models.families`), or "auto" to read it from a folder's model_index.json.
    family: str = "auto"
    #: Single-file checkpoints: a diffusers folder (or hub id) with the family's configs and tokenizers, no weights
    #: needed. Offline, diffusers can load a single file only with one (it reads the configs from the hub otherwise).
    config: str | None = None
    #: Weight variant to load from a folder or hub id (e.g. "fp16").
    variant: str | None = None
    #: auto: half precision on a GPU (fp16, or bf16 for FLUX/SD3/Wan), fp32 on the CPU; or fp16, bf16, fp32.
    dtype: Literal["auto", "fp16", "bf16", "fp32"] = "auto"
    #: Pin this model to a device ("cpu", "cuda:1", "mps"); unset: the worker's own (`--device`).
    device: str | None = None
    width: int = Field(ge=8)
    height: int = Field(ge=8)
    steps: int = Field(ge=1)
    guidance: float = Field(ge=0)
    sampler: Sampler
    #: Clips: default frames and playback speed.
    frames: int | None = Field(default=None, ge=1)
    fps: int = Field(default=8, ge=1, le=60)
    display_scale: int = Field(default=1, ge=1, le=8)
    fallback: str | None = None
    limits: ModelLimits = Field(default_factory=ModelLimits)
    #: filter: the safety checker runs except in age-restricted channels; always: it runs everywhere;
    #: allow: it never runs (a model that cannot draw people, or an owner's own choice).
    nsfw: Literal["filter", "always", "allow"] = "filter"
    #: Load pickled weights (`.ckpt`, `.bin`) too. Off: safetensors only, since unpickling a file runs its code.
    allow_pickle: bool = False
    loras: dict[str, Lora] = Field(default_factory=dict)

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            return families.get(value).name  # aliases become the canonical name
        except families.UnknownFamily as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _source_fields(self) -> ModelEntry:
        if not MODEL_NAME.match(self.name):
            raise ValueError(f"model name {self.name!r} is not lowercase letters, digits, '_', '-', '.'")
        if self.source in ("local", "single_file") and not self.path:
            raise ValueError(f"model {self.name!r}: source {self.source!r} needs a path")
        if self.source == "hub" and not self.id:
            raise ValueError(f"model {self.name!r}: source 'hub' needs an id")
        if self.source == "single_file" and self.family == "auto":
            raise ValueError(f"model {self.name!r}: a single-file checkpoint needs its family named")
        family = self.family_info
        if family is not None:
            if self.sampler not in family.samplers:
                raise ValueError(
                    f"model {self.name!r}: sampler {self.sampler!r} does not apply to {family.name} "
                    f"(it takes {', '.join(family.samplers)})"
                )
            if self.source == "single_file" and not family.single_file:
                raise ValueError(f"model {self.name!r}: {family.name} cannot load from a single file; use a folder")
        for key, lora in self.loras.items():
            if key != lora.name or not MODEL_NAME.match(key):
                raise ValueError(f"model {self.name!r}: LoRA name {key!r} is not lowercase letters, digits, '_-.'")
        return self

    @property
    def family_info(self) -> Family | None:
        """The entry's family, or None for "auto" (known once the folder is read)."""
        return None if self.family == "auto" else families.get(self.family)

    @property
    def kind(self) -> str:
        family = self.family_info
        return family.kind if family is not None else "image"

    @property
    def choosable_loras(self) -> list[str]:
        """LoRAs a member may pick (fused ones are always on)."""
        return [name for name, lora in self.loras.items() if not lora.fuse]

    @property
    def defaults(self) -> ModelDefaults:
        return ModelDefaults(
            width=self.width,
            height=self.height,
            steps=self.steps,
            guidance=self.guidance,
            sampler=self.sampler,
            frames=self.frames if self.kind == "clip" else None,
            fps=self.fps if self.kind == "clip" else None,
        )

    def check_spec(self, spec: JobSpec, family: Family | None = None) -> None:
        """Refuse a resolved spec this model cannot run: kind, sampler, LoRAs and the model's own limits.

        `family` is the loaded pipeline's, for entries whose family is "auto" (known only once loaded).
        """
        family = family or self.family_info
        kind = family.kind if family is not None else "image"
        if spec.kind != kind:
            raise SpecError("kind", f"model {self.name!r} makes {_plural(kind)}, not {_plural(spec.kind)}")
        if family is not None and spec.sampler is not None and spec.sampler not in family.samplers:
            raise SpecError("sampler", f"model {self.name!r} takes {', '.join(family.samplers)}")
        if spec.kind == "clip" and spec.count > 1:
            raise SpecError("count", "clips are made one at a time")
        if spec.init_image is not None and family is not None and not family.img2img:
            raise SpecError("init_image", f"model {self.name!r} cannot redraw an image ({family.label})")
        allowed = self.choosable_loras
        for name in spec.loras:
            if name not in allowed:
                listed = ", ".join(allowed) or "none"
                raise SpecError("loras", f"model {self.name!r} has no LoRA {name!r} to choose (listed: {listed})")
        limits = self.limits
        checks: list[tuple[str, int | None, int | None]] = [
            ("steps", spec.steps, limits.max_steps),
            ("count", spec.count, limits.max_count),
            ("width", spec.width, limits.max_side),
            ("height", spec.height, limits.max_side),
            ("frames", spec.frames, limits.max_frames),
        ]
        for field, value, bound in checks:
            if bound is not None and value is not None and value > bound:
                raise SpecError(field, f"must be at most {bound} for model {self.name!r}")
        if (
            limits.max_pixels is not None
            and spec.width
            and spec.height
            and spec.width * spec.height > limits.max_pixels
        ):
            raise SpecError("width", f"width x height must be at most {limits.max_pixels} pixels for {self.name!r}")

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
    """All entries plus the default's name (and the default clip model's: a job for a clip that names no model)."""

    model_config = ConfigDict(frozen=True)

    default: str
    models: dict[str, ModelEntry]
    default_clip: str | None = None

    @model_validator(mode="after")
    def _names_exist(self) -> Registry:
        if self.default not in self.models:
            raise ValueError(f"default model {self.default!r} is not in the registry")
        if self.default_clip is not None and self.default_clip not in self.models:
            raise ValueError(f"default clip model {self.default_clip!r} is not in the registry")
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

    def resolve(self, name: str | None, data_dir: Path, kind: str = "image") -> ModelEntry:
        """The entry to run for `name` (None: the default for `kind`), following `fallback` when weights are missing."""
        entry = self.get(name or (self.default_clip if kind == "clip" and self.default_clip else self.default))
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
                kind=e.kind,
                family=e.family,
                loras=e.choosable_loras,
            )
            for e in self.models.values()
        ]


def _plural(kind: str) -> str:
    return {"image": "images", "clip": "clips"}.get(kind, kind)


def read(path: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The registry file's path and its TOML, unvalidated (`models.check` validates entry by entry)."""
    path = Path(path) if path is not None else DEFAULT_FILE
    with open(path, "rb") as fh:
        return path, tomllib.load(fh)


def entry_fields(path: Path, name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """One entry's fields with relative paths made relative to the registry file (the packaged one: `models/`)."""
    base = path.resolve().parent
    fields = dict(fields)
    if fields.get("path") and not Path(fields["path"]).expanduser().is_absolute():
        fields["path"] = str(base / fields["path"])
    config = fields.get("config")
    if config and (base / config).exists():  # otherwise a hub id (checked by `models.check`)
        fields["config"] = str(base / config)
    loras = {}
    for lora_name, lora in (fields.get("loras") or {}).items():
        lora = dict(lora) if isinstance(lora, dict) else {"file": lora}
        if lora.get("file") and not Path(lora["file"]).expanduser().is_absolute():
            lora["file"] = str(base / lora["file"])
        loras[lora_name] = {"name": lora_name, **lora}
    if loras:
        fields["loras"] = loras
    return {"name": name, **fields}


def load(path: Path | None = None) -> Registry:
    """Read the registry file (the packaged `registry.toml` unless `path` is given)."""
    path, raw = read(path)
    models = {name: ModelEntry(**entry_fields(path, name, fields)) for name, fields in raw.get("models", {}).items()}
    return Registry(
        default=raw.get("default", next(iter(models), "")), models=models, default_clip=raw.get("default_clip")
    )
