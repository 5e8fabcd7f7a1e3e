"""A bounded probe of the everyday model: `python -m models.everyday.probe --minutes 60 --threads 1`.

Trains the UNet and the projection (`architecture`) on pre-rendered scenes of a 200-object subset
(`heldout.probe_subset`), captions drawn afresh every step and encoded by the frozen MiniLM, 10% empty prompts for
guidance; v-prediction on the cosine schedule with a quarter of the timesteps from the noisiest tenth, AdamW with
warm-up, an EMA of the weights (`models.training`). Resumable from its checkpoint; every `--snapshot-steps` it
writes the EMA weights (`snapshots/step-NNNNN.safetensors`, about 17 MB) for `models.everyday.evaluate`.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from copy import deepcopy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from models import training

from . import architecture, text
from .captions import caption
from .heldout import probe_subset, training_scene
from .world import render

log = logging.getLogger(__name__)
DEFAULT_STATE = Path(__file__).resolve().parents[2] / ".data" / "everyday-probe"


def render_set(count: int, seed: int, pool: tuple[int, ...]) -> tuple[torch.Tensor, list]:
    """`count` training scenes of `pool` (never a held-out one) as uint8 pixels (count, 3, 32, 32), and the scenes."""
    rng = random.Random(seed)
    scenes = [training_scene(rng, pool, pool) for _ in range(count)]
    pixels = np.stack([np.asarray(render(s, rng)) for s in scenes]).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(pixels)), scenes


class Probe:
    """The models, their EMA copies, the optimizer and the random streams; one `step()` is one batch."""

    def __init__(self, a: argparse.Namespace, pixels: torch.Tensor, scenes: list) -> None:
        self.a, self.pixels, self.scenes = a, pixels, scenes
        torch.manual_seed(a.seed)
        self.unet = architecture.make_unet()
        self.projection = architecture.Projection()
        self.ema_unet = deepcopy(self.unet).requires_grad_(False)
        self.ema_projection = deepcopy(self.projection).requires_grad_(False)
        params = [*self.unet.parameters(), *self.projection.parameters()]
        self.opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
        self.alphas = architecture.make_train_scheduler().alphas_cumprod.float()
        self.rng = random.Random(a.seed + 1)
        self.gen = torch.Generator().manual_seed(a.seed + 2)
        self.step_count, self.seconds = 0, 0.0
        self.probe_losses: list[float] = [0.0]

    def modules(self) -> dict[str, torch.nn.Module]:
        return {
            "unet": self.unet,
            "projection": self.projection,
            "ema_unet": self.ema_unet,
            "ema_projection": self.ema_projection,
        }

    def step(self) -> float:
        a = self.a
        for group in self.opt.param_groups:
            group["lr"] = a.lr * min(1.0, (self.step_count + 1) / a.warmup)
        idx = torch.randint(0, len(self.pixels), (a.batch,), generator=self.gen)
        x0 = self.pixels[idx].float() / 127.5 - 1
        prompts = ["" if self.rng.random() < a.caption_drop else caption(self.scenes[i], self.rng) for i in idx]
        states, mask = text.encode(prompts)
        t = training.noisy_heavy_timesteps(1000, a.batch, a.high_noise_share, self.gen)
        noise = torch.randn(x0.shape, generator=self.gen)
        noisy, target = training.v_prediction(x0, noise, self.alphas, t)
        cond = self.projection(states, mask)
        loss = F.mse_loss(self.unet(noisy, t, encoder_hidden_states=cond).sample, target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*self.unet.parameters(), *self.projection.parameters()], 1.0)
        self.opt.step()
        self.step_count += 1
        pairs = ((self.ema_unet, self.unet), (self.ema_projection, self.projection))
        training.update_ema(pairs, training.ema_decay(self.step_count))
        return loss.item()

    def save_state(self, folder: Path) -> None:
        meta = {"step": self.step_count, "seconds": self.seconds}
        training.save_state(folder, self.modules(), self.opt, self.rng, self.gen, meta)

    def load_state(self, folder: Path) -> None:
        meta = training.load_state(folder, self.modules(), self.opt, self.rng, self.gen)
        self.step_count, self.seconds = meta["step"], meta["seconds"]

    def snapshot(self, folder: Path) -> Path:
        """The EMA weights alone, one file per step, for the evaluator."""
        tensors = {f"unet.{k}": v.contiguous() for k, v in self.ema_unet.state_dict().items()}
        tensors.update({f"projection.{k}": v.contiguous() for k, v in self.ema_projection.state_dict().items()})
        path = folder / "snapshots" / f"step-{self.step_count:05d}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, path, metadata={"step": str(self.step_count), "seconds": str(round(self.seconds))})
        return path


def load_snapshot(path: Path) -> tuple[torch.nn.Module, architecture.Projection, dict[str, str]]:
    """(UNet, projection, metadata) from a snapshot file, ready to sample."""
    from safetensors import safe_open

    tensors = load_file(path)
    unet, projection = architecture.make_unet(), architecture.Projection()
    for prefix, module in (("unet.", unet), ("projection.", projection)):
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata() or {})
    return unet.eval(), projection.eval(), meta


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.everyday.probe", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scenes", type=int, default=30_000)
    p.add_argument("--caption-drop", type=float, default=0.1)
    p.add_argument("--high-noise-share", type=float, default=0.25)
    p.add_argument("--snapshot-steps", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--state", type=Path, default=DEFAULT_STATE)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse(argv)
    a.state.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(a.threads)
    pixels, scenes = render_set(a.scenes, a.seed, probe_subset())
    probe = Probe(a, pixels, scenes)
    if training.saved_step(a.state) is not None:
        probe.load_state(a.state)
        log.info("resumed at step %d", probe.step_count)
    start, losses = time.monotonic(), []
    while probe.step_count < a.steps and time.monotonic() - start < a.minutes * 60:
        t0 = time.monotonic()
        losses.append(probe.step())
        probe.seconds += time.monotonic() - t0
        if probe.step_count % 25 == 0:
            log.info("step %d loss %.4f %.2f s/step", probe.step_count, np.mean(losses[-25:]), time.monotonic() - t0)
        if probe.step_count % a.snapshot_steps == 0:
            probe.save_state(a.state)
            log.info("snapshot %s", probe.snapshot(a.state))
    probe.save_state(a.state)
    log.info("stopped at step %d; snapshot %s", probe.step_count, probe.snapshot(a.state))


if __name__ == "__main__":
    main()
