"""Settings from the environment and `.env`, in one typed object handed to whoever needs it.

Every field is documented in `.env.example` with its default. Secrets are `SecretStr`, so a settings object can be
logged or printed without leaking them (its repr shows `**********`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from imagine.contract import Limits

log = logging.getLogger(__name__)


class Settings(BaseSettings):
    """What a bot, a worker or the CLI needs to know about its surroundings."""

    model_config = SettingsConfigDict(
        env_prefix="IMAGINE_",
        env_file=".env",
        env_ignore_empty=True,  # `REDIS_URL=` in .env means unset, as .env.example shows
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # Redis. Unset: an embedded server is started with its data under `data_dir`.
    redis_url: SecretStr | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "IMAGINE_REDIS_URL"))
    data_dir: Path = Path(".data")
    registry_file: Path | None = Field(default=None, description="a registry TOML instead of the packaged one")

    # Discord. The bot logs in with the token; workers need it too, to post in the channel once an interaction's
    # 15 minutes are over and for jobs asked for by a reaction.
    discord_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DISCORD_TOKEN", "IMAGINE_DISCORD_TOKEN")
    )
    dev_guild_id: int | None = Field(default=None, description="server the bot syncs its commands to at start")
    progress_interval: float = Field(default=2.0, ge=0.05, description="seconds between edits of one message")
    variation_strength: float = Field(default=0.6, gt=0, le=1, description="how much a variation redraws")
    image_ttl: int = Field(default=2 * 3600, ge=60, description="seconds results stay in Redis for U and V")
    #: Tests only: where discord.py and the workers send REST calls (the gateway URL is derived from it).
    discord_api_base: str | None = None

    # Limits on what a member may ask for (checked by the bot before enqueueing and again by the worker).
    max_prompt_chars: int = Field(default=1000, ge=1)
    max_steps: int = Field(default=60, ge=1)
    max_pixels: int = Field(default=1024 * 1024, ge=64)
    max_side: int = Field(default=2048, ge=8)
    max_count: int = Field(default=4, ge=1, le=4)
    max_guidance: float = Field(default=30.0, gt=0)
    max_frames: int = Field(default=49, ge=1, description="frames of one clip")

    # Jobs.
    job_timeout: int = Field(default=600, ge=1, description="seconds one attempt may run before it is failed")
    job_retries: int = Field(default=2, ge=0, description="extra attempts after a crash or error")
    result_ttl: int = Field(default=3600, ge=1, description="seconds a finished result stays in Redis")
    record_ttl: int = Field(default=30 * 24 * 3600, ge=60, description="seconds a job record stays (buttons)")

    # Moderation: every server's limits until its moderators change them (`/mod limits`, kept in Redis).
    member_max_active: int = Field(default=4, ge=1, description="queued-or-running jobs per member")
    member_max_per_hour: int = Field(default=60, ge=1, description="jobs per member per hour")
    guild_max_queue: int = Field(default=50, ge=1, description="queued-or-running jobs per server")
    max_waiting: int = Field(default=5000, ge=1, description="jobs waiting across all servers; more are refused")
    paused_accepts: bool = Field(default=True, description="a paused server still takes new jobs (they wait)")
    guild_grace: int = Field(default=7 * 24 * 3600, ge=0, description="seconds a left server's data is kept")
    moderator_role: str | None = Field(default=None, description="the id of a role that moderates everywhere")

    # Workers.
    device: str = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    torch_threads: int = Field(default=0, ge=0, description="0 leaves torch's default")
    pipeline_cache: int = Field(default=2, ge=1, description="pipelines a worker keeps resident")
    preview_every: int = Field(default=5, ge=0, description="steps between previews; 0 turns them off")
    preview_size: int = Field(default=128, ge=16)
    # Speed (see worker/batching.py, worker/speed.py and the README's latency budget).
    batch_max: int = Field(default=8, ge=1, description="images of waiting jobs sampled in one call; 1: no batching")
    batch_wait_ms: int = Field(default=0, ge=0, le=1000, description="how long a job waits for batch companions")
    cpu_bf16: bool = Field(default=True, description="bf16 autocast on CPUs with bf16 units (channels-last on any CPU)")
    heartbeat_interval: int = Field(default=5, ge=1, description="seconds between heartbeats during a job")
    heartbeat_ttl: int = Field(default=30, ge=3, description="a job with no heartbeat this long is abandoned")
    maintenance_interval: int = Field(default=15, ge=1, description="seconds between registry clean-ups")
    worker_ttl: int = Field(default=60, ge=16, description="an idle worker unseen this long is dead")

    # GPU practice (see worker/gpu.py). Each is on by default where it is safe; `dtype=auto` is half on CUDA.
    sdpa: bool = Field(default=True, description="PyTorch's scaled-dot-product attention")
    channels_last: bool = Field(default=True, description="channels-last UNet on CUDA")
    vae_slicing: bool = Field(default=True, description="decode several images one at a time")
    vae_tiling_above: int = Field(default=1024 * 1024, ge=0, description="tiled VAE above this many pixels; 0: never")
    offload: Literal["auto", "none", "model", "sequential"] = "auto"
    offload_below_gib: float = Field(default=12.0, ge=0, description="auto: model CPU offload on smaller cards")
    compile: bool = Field(default=False, description="torch.compile the denoiser, warmed up at start-up")
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = "default"
    safety_checker: bool = Field(default=True, description="off: never run a model's safety checker")

    # Operations.
    log_format: Literal["text", "json"] = "text"
    metrics_host: str = Field(default="127.0.0.1", description="address the /metrics endpoints listen on")
    bot_metrics_port: int = Field(default=9100, ge=0, le=65535, description="0 turns the bot's /metrics off")
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535, description="0 turns a worker's /metrics off")

    def limits(self) -> Limits:
        """The request limits as the contract's own type."""
        return Limits(
            max_prompt_chars=self.max_prompt_chars,
            max_steps=self.max_steps,
            max_pixels=self.max_pixels,
            max_side=self.max_side,
            max_count=self.max_count,
            max_guidance=self.max_guidance,
            max_frames=self.max_frames,
        )

    def redis_url_value(self) -> str | None:
        return self.redis_url.get_secret_value() if self.redis_url else None


def redact_url(url: str) -> str:
    """A Redis URL fit for a log line: the password (and user) replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
