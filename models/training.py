"""What the image and clip recipes share: the diffusion target, the timestep draw, the EMA of the weights,
checkpoints (safetensors and JSON, never pickle) and the loop that checkpoints and exports on a clock.

Each recipe keeps what is its own (its data, its models, its `step()` and its export); a recipe's trainer hands
this module its modules, optimizer and random streams by name.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

log = logging.getLogger(__name__)

STATE_TENSORS = "state.safetensors"
STATE_META = "state.json"


# ---------------------------------------------------------------------------------------------- the algorithm


def v_prediction(
    x0: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The noisy input at timesteps `t` and the v-prediction target, for samples of any rank (images or clips)."""
    shape = (-1,) + (1,) * (x0.ndim - 1)
    a = alphas_cumprod[t].sqrt().view(shape)
    s = (1 - alphas_cumprod[t]).sqrt().view(shape)
    return a * x0 + s * noise, a * noise - s * x0


def noisy_heavy_timesteps(total: int, batch: int, high_noise_share: float, gen: torch.Generator) -> torch.Tensor:
    """Uniform timesteps, with a share drawn again from the noisiest tenth of the schedule.

    Where a shape goes is settled in the first sampling steps: from about t=900 down, the noisy input already
    shows the blob, so the model reads its place from the pixels rather than from "top left" or "moving left".
    Uniform sampling gives the steps where only the words can say where (pure noise in, layout out) a few percent
    of training; the image model, trained that way, learned colour and size but never position.
    """
    t = torch.randint(0, total, (batch,), generator=gen)
    noisiest = torch.rand(batch, generator=gen) < high_noise_share
    t[noisiest] = torch.randint(total * 9 // 10, total, (int(noisiest.sum()),), generator=gen)
    return t


def ema_decay(steps_since_start: int) -> float:
    """Short memory at first (the early weights are poor), 0.999 once a thousand or so steps are in."""
    return min(0.999, (1 + steps_since_start) / (10 + steps_since_start))


@torch.no_grad()
def update_ema(pairs: Iterable[tuple[torch.nn.Module, torch.nn.Module]], decay: float) -> None:
    """Move each (ema, live) pair's EMA weights towards the live ones."""
    for ema, live in pairs:
        for pe, pl in zip(ema.parameters(), live.parameters(), strict=True):
            pe.lerp_(pl, 1 - decay)


# ---------------------------------------------------------------------------------------------- checkpoints


def save_state(
    folder: Path,
    modules: dict[str, torch.nn.Module],
    opt: torch.optim.Optimizer,
    rng: random.Random,
    gen: torch.Generator,
    meta: dict[str, Any],
) -> None:
    """Tensors (weights, Adam's moments, the torch generator) in safetensors, the rest in JSON; each file is written
    whole, then renamed over the old one, so a run killed mid-write leaves the previous checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {"gen": gen.get_state()}
    for name, module in modules.items():
        tensors.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    saved = opt.state_dict()
    for index, slots in saved["state"].items():
        tensors.update({f"opt.{index}.{k}": torch.as_tensor(v).cpu() for k, v in slots.items()})
    version, internal, gauss = rng.getstate()
    meta = {**meta, "rng": [version, list(internal), gauss], "param_groups": saved["param_groups"]}
    save_file(tensors, folder / f"{STATE_TENSORS}.tmp")
    (folder / f"{STATE_META}.tmp").write_text(json.dumps(meta))
    (folder / f"{STATE_TENSORS}.tmp").replace(folder / STATE_TENSORS)
    (folder / f"{STATE_META}.tmp").replace(folder / STATE_META)


def load_state(
    folder: Path,
    modules: dict[str, torch.nn.Module],
    opt: torch.optim.Optimizer,
    rng: random.Random,
    gen: torch.Generator,
) -> dict[str, Any]:
    """Restore what `save_state` wrote into the given objects; returns the recipe's own fields of the JSON."""
    tensors = load_file(folder / STATE_TENSORS)
    meta = json.loads((folder / STATE_META).read_text())
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, slot = key.split(".", 2)
            slots.setdefault(int(index), {})[slot] = value
    opt.load_state_dict({"state": slots, "param_groups": meta.pop("param_groups")})
    version, internal, gauss = meta.pop("rng")
    rng.setstate((version, tuple(internal), gauss))
    gen.set_state(tensors["gen"])
    return dict(meta)


def saved_step(folder: Path) -> int | None:
    """The step of the checkpoint in `folder`, or None when there is none."""
    path = folder / STATE_META
    return int(json.loads(path.read_text())["step"]) if (folder / STATE_TENSORS).is_file() and path.is_file() else None


def exported_step(folder: Path) -> int | None:
    """The step of the pipeline exported to `folder`, or None when there is none."""
    path = folder / "training.json"
    return int(json.loads(path.read_text())["steps"]) if path.is_file() else None


# ---------------------------------------------------------------------------------------------- the loop


class Recipe(Protocol):
    """What the loop needs of a recipe's trainer."""

    step_count: int
    seconds: float
    probe_losses: list[float]

    def step(self) -> float: ...

    def save_state(self, folder: Path) -> None: ...

    def load_state(self, folder: Path) -> None: ...

    def load_exported(self, folder: Path) -> None: ...

    def export(self, folder: Path) -> None: ...


def resume(trainer: Recipe, state: Path, out: Path) -> None:
    """Pick up from the checkpoint in `state` or the export in `out`, whichever is further along (the checkpoint on
    a tie): weights trained on another machine arrive as an export only, and resuming an older local checkpoint
    would overwrite them with a continuation of less. With neither, training starts from the beginning."""
    saved, exported = saved_step(state), exported_step(out)
    if saved is not None and (exported is None or saved >= exported):
        trainer.load_state(state)
        log.info("resumed from %s at step %d", state, trainer.step_count)
    elif exported is not None:
        trainer.load_exported(out)
        log.info("resumed from exported weights in %s at step %d", out, trainer.step_count)


@dataclass(frozen=True)
class Schedule:
    """How long to train and how often to save: steps are the goal, minutes a cap on this run alone."""

    steps: int
    minutes: float
    checkpoint_minutes: float
    export_minutes: float


def train(trainer: Recipe, schedule: Schedule, state: Path, out: Path, desc: str, log_every: int = 50) -> None:
    """Step until `schedule.steps` (or its minutes run out): a progress bar, a log line every `log_every` steps,
    a checkpoint and an export on their clocks, and both once more at the end. A run with no step to take writes
    nothing: re-exporting weights trained elsewhere would rewrite their training.json with this run's settings."""
    start = time.monotonic()
    last_checkpoint = last_export = start
    bar = tqdm(total=schedule.steps, initial=trainer.step_count, desc=desc, smoothing=0.05)
    losses: list[float] = []
    while trainer.step_count < schedule.steps and time.monotonic() - start < schedule.minutes * 60:
        t0 = time.monotonic()
        losses.append(trainer.step())
        trainer.seconds += time.monotonic() - t0
        bar.update(1)
        if trainer.step_count % log_every == 0:
            loss = sum(losses[-log_every:]) / len(losses[-log_every:])
            probe = sum(trainer.probe_losses[-log_every:]) / len(trainer.probe_losses[-log_every:])
            bar.set_postfix(loss=f"{loss:.4f}", probe=f"{probe:.3f}")
            log.info("step %d loss %.4f text probe %.3f", trainer.step_count, loss, probe)
        now = time.monotonic()
        if now - last_checkpoint > schedule.checkpoint_minutes * 60:
            trainer.save_state(state)
            last_checkpoint = now
        if now - last_export > schedule.export_minutes * 60:
            trainer.export(out)
            last_export = now
            log.info("exported step %d to %s", trainer.step_count, out)
    bar.close()
    if not losses:  # nothing ran: leave the state and the export (with its training.json) as they are
        log.info("nothing to train: at step %d of %d (%s)", trainer.step_count, schedule.steps, out)
        return
    trainer.save_state(state)
    trainer.export(out)
    log.info("done at step %d; exported to %s", trainer.step_count, out)
