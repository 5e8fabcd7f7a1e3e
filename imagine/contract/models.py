"""What workers advertise about their models, so the bot can offer them without importing `models`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .spec import ModelDefaults


class ModelInfo(BaseModel):
    """A registry entry as the bot sees it: published by workers under `keys.MODELS`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    description: str = ""
    defaults: ModelDefaults
    display_scale: int = 1
    available: bool = True
    default: bool = False
    #: "image" or "clip"; the family ("sd15", "sdxl", "flux", "wan", …); LoRAs a member may pick by name.
    kind: str = "image"
    family: str = ""
    loras: list[str] = Field(default_factory=list)
    #: Its NSFW policy wants its images screened and nothing would screen them: age-restricted channels only.
    age_restricted_only: bool = False
