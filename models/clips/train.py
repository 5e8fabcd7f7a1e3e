"""The clip model's recipe: `python -m models.clips.train`.

Starts from the image model (`models/shapes/weights`): its frozen VAE, its text encoder with the motion words
added, and its UNet's weights in the clip UNet's spatial layers, first convolution, layout and pooled-prompt
embedding, its temporal layers at the identity (see `architecture.inflate`), so the clip UNet starts by drawing
every frame as the image model would and what is left to learn is mostly motion. Then v-prediction on the image
model's cosine schedule over whole clips, a quarter of the timesteps from the noisiest tenth (`Trainer.timesteps`),
AdamW with warm-up, 10% caption dropout, an EMA of the weights, bf16 autocast where the CPU has it. Clips are
rendered as they are needed (a clip is about a millisecond of Pillow; the frozen VAE encodes a batch in a fraction of
a step), so there is no data set to build or cache, and the random streams that draw them are part of the
checkpoint.

Seeded and resumable: state (weights, EMA, optimizer, step, random states; safetensors and JSON) is checkpointed
every few minutes to a git-ignored folder, and the EMA weights are exported as a `TextToVideoSDPipeline` folder (what
the registry points at) every export interval and at the end. `--bench N` times N steps and prints the cost per step
instead.

Budget (measured with `--bench`, 1 torch thread, batch 8 clips x 8 frames of 32x32): 4.2-4.3 s of CPU a step with
bf16 autocast and the stock UNet3D of 2.59M parameters, so the default 1,600 steps were about 1 h 55 min of one
core, the whole of issue 7's "under 2 hours". The UNet is now 2.96M parameters (coordinates, the per-frame layout
and the pooled prompt, `models.clips.unet`) at the same cost within measurement (the UNet's forward and backward on
a training batch, interleaved with the stock UNet's: 10.1-10.8 s of CPU for either). On a CPU without bf16 (float32;
the 2-core AMD EPYC this was measured on, its other core training the image model) a step is 10-12 s of CPU, so
1,600 steps take about five hours: cap a run with `--minutes` (a later run resumes it), and give it both cores
(`--threads 2`) when they are free.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import statistics
import time
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from safetensors.torch import load_file, save_file
from tqdm import tqdm
from transformers import CLIPTextModel

from models.shapes.autoencoder import to_unit, train_vae

from . import architecture
from .captions import caption
from .heldout import is_heldout
from .unet import CoordUNet3DConditionModel
from .world import FRAMES, ClipScene, random_clip_scene, render_clip

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "weights"
DEFAULT_STATE = HERE.parents[1] / ".data" / "clips"
DEFAULT_INIT = HERE.parent / "shapes" / "weights"


@dataclass
class Options:
    steps: int
    minutes: float
    batch: int
    frames: int
    lr: float
    warmup: int
    seed: int
    caption_drop: float
    background_drop: float
    high_noise_share: float
    checkpoint_minutes: float
    export_minutes: float
    bf16: bool
    threads: int
    state: Path
    out: Path
    init: Path | None
    channels: tuple[int, ...]
    head_dim: int
    vae_steps: int
    bench: int


def parse(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m models.clips.train", description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1600, help="train until this total step count")
    p.add_argument("--minutes", type=float, default=math.inf, help="stop after this many minutes of this run")
    p.add_argument("--batch", type=int, default=8, help="clips per step")
    p.add_argument("--frames", type=int, default=FRAMES, help="frames per training clip")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--caption-drop", type=float, default=0.1, help="share of empty prompts (for guidance)")
    p.add_argument("--background-drop", type=float, default=0.15, help="chance a caption leaves out the background")
    p.add_argument(
        "--high-noise-share", type=float, default=0.25, help="share of timesteps drawn from the noisiest tenth"
    )
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--export-minutes", type=float, default=15.0)
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in float32 only")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="checkpoint folder (git-ignored)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="exported pipeline folder")
    p.add_argument(
        "--init",
        default=str(DEFAULT_INIT),
        help="the image model's pipeline folder to start from, or 'none' to start from scratch",
    )
    p.add_argument("--channels", default="32,64,64", help="UNet channels per level (the image model's to --init)")
    p.add_argument("--head-dim", type=int, default=16, help="width of one attention head")
    p.add_argument("--vae-steps", type=int, default=1500, help="VAE training steps, only without --init")
    p.add_argument("--bench", type=int, default=0, help="time this many steps, print the cost per step, save nothing")
    a = p.parse_args(argv)
    init = None if a.init.lower() == "none" else Path(a.init)
    bf16 = a.bf16 and torch.backends.mkldnn.is_available() and _cpu_has_bf16()
    return Options(
        a.steps, a.minutes, a.batch, a.frames, a.lr, a.warmup, a.seed, a.caption_drop, a.background_drop,
        a.high_noise_share, a.checkpoint_minutes, a.export_minutes, bf16, a.threads, a.state, a.out, init,
        tuple(int(c) for c in a.channels.split(",")), a.head_dim, a.vae_steps, a.bench,
    )  # fmt: skip


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def draw_batch(rng: random.Random, count: int, frames: int) -> tuple[list[ClipScene], torch.Tensor]:
    """`count` training clips (never a held-out scene) as uint8 (count, frames, 3, H, W)."""
    scenes, clips = [], []
    for _ in range(count):
        scene = random_clip_scene(rng)
        while is_heldout(scene):
            scene = random_clip_scene(rng)
        scenes.append(scene)
        clips.append(np.stack([np.asarray(f) for f in render_clip(scene, frames, rng)]))
    return scenes, torch.from_numpy(np.stack(clips)).permute(0, 1, 4, 2, 3).contiguous()


@torch.no_grad()
def encode_clips(vae: AutoencoderKL, pixels: torch.Tensor) -> torch.Tensor:
    """(B, F, 3, H, W) uint8 -> scaled latents (B, C, F, H, W), the layout a UNet3DConditionModel takes."""
    b, f = pixels.shape[:2]
    latents = vae.encode(to_unit(pixels.flatten(0, 1))).latent_dist.mean * vae.config.scaling_factor
    return latents.unflatten(0, (b, f)).permute(0, 2, 1, 3, 4).contiguous()


# ---------------------------------------------------------------------------------------------- the parts


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*/*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def starting_parts(opts: Options) -> tuple[AutoencoderKL, CLIPTextModel, CoordUNet3DConditionModel, dict]:
    """The VAE, text encoder and UNet training starts from, and where they came from (for training.json)."""
    tokenizer = architecture.make_tokenizer()
    torch.manual_seed(opts.seed)
    unet = architecture.make_unet(opts.channels, opts.head_dim)
    if opts.init is not None:
        if not (opts.init / "model_index.json").is_file():
            raise SystemExit(
                f"no image model in {opts.init}: train it first (python -m models.shapes.train), or pass --init none"
            )
        vae = AutoencoderKL.from_pretrained(opts.init / "vae")
        text = CLIPTextModel.from_pretrained(opts.init / "text_encoder")
        text = architecture.grow_text_encoder(text, len(tokenizer), opts.seed)
        left = architecture.inflate(unet, load_file(next((opts.init / "unet").glob("*.safetensors"))))
        log.info("started from the image model in %s (%d tensors new: %s)", opts.init, len(left), _summary(left))
        origin: dict[str, Any] = {"init": str(opts.init.name if opts.init.parent == DEFAULT_INIT.parent else opts.init)}
        origin["init_digest"] = _digest(opts.init)
        meta = opts.init / "training.json"
        if meta.is_file():
            origin["init_steps"] = json.loads(meta.read_text()).get("steps")
    else:
        vae = _vae_from_scratch(opts)
        text = architecture.make_text_encoder(len(tokenizer))
        origin = {"init": None}
    return vae.eval().requires_grad_(False), text, unet, origin


def _summary(keys: list[str]) -> str:
    """The modules new tensors belong to, by kind: "temporal 300, layout.frames 1"."""
    kinds: dict[str, int] = {}
    for key in keys:
        kind = "temporal" if "temp_" in key or key.startswith("transformer_in.") else key.rsplit(".", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{kind} {count}" for kind, count in kinds.items())


def _vae_from_scratch(opts: Options) -> AutoencoderKL:
    """Without an image model, the image model's own VAE stage on frames of this world (kept in the state folder)."""
    folder = opts.state / "vae"
    if (folder / "config.json").is_file():
        return AutoencoderKL.from_pretrained(folder)
    rng = random.Random(opts.seed + 3)
    _, pixels = draw_batch(rng, max(64, opts.batch * 8), opts.frames)
    vae = train_vae(pixels.flatten(0, 1), opts.vae_steps, opts.seed)
    vae.save_pretrained(folder)
    return vae


# ---------------------------------------------------------------------------------------------- training


class Trainer:
    """Holds the models, the EMA copies, the optimizer and the random streams; one `step()` is one batch of clips."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.vae, self.text_encoder, self.unet, self.origin = starting_parts(opts)
        self.tokenizer = architecture.make_tokenizer()
        self.noise = architecture.make_train_scheduler()
        self.alphas = self.noise.alphas_cumprod.float()
        self.step_count = 0
        self.seconds = 0.0
        self.ema_unet = deepcopy(self.unet).requires_grad_(False)
        self.ema_text = deepcopy(self.text_encoder).requires_grad_(False)
        self.opt = torch.optim.AdamW(self.parameters(), lr=opts.lr, weight_decay=0.01)
        self.rng = random.Random(opts.seed + 1)
        self.gen = torch.Generator().manual_seed(opts.seed + 2)

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.unet.parameters()) + list(self.text_encoder.parameters())

    def step(self) -> float:
        opts = self.opts
        for group in self.opt.param_groups:
            group["lr"] = opts.lr * min(1.0, (self.step_count + 1) / opts.warmup)
        # The UNet's temporal layers use dropout, which draws from torch's global stream: seeding it by step keeps a
        # resumed run on exactly the path of an uninterrupted one.
        torch.manual_seed(opts.seed * 1_000_003 + self.step_count)
        scenes, pixels = draw_batch(self.rng, opts.batch, opts.frames)
        x0 = encode_clips(self.vae, pixels)
        prompts = [
            "" if self.rng.random() < opts.caption_drop else caption(s, self.rng, opts.background_drop) for s in scenes
        ]
        ids = self.tokenizer(
            prompts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True,
            return_tensors="pt",
        ).input_ids  # fmt: skip
        t = self.timesteps(opts.batch)
        noise = torch.randn(x0.shape, generator=self.gen)
        a = self.alphas[t].sqrt().view(-1, 1, 1, 1, 1)
        s = (1 - self.alphas[t]).sqrt().view(-1, 1, 1, 1, 1)
        noisy, target = a * x0 + s * noise, a * noise - s * x0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts.bf16):
            text = self.text_encoder(ids)[0]
            pred = self.unet(noisy, t, encoder_hidden_states=text).sample
        loss = F.mse_loss(pred.float(), target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)
        self.opt.step()
        self.step_count += 1
        self._update_ema()
        return loss.item()

    def timesteps(self, batch: int) -> torch.Tensor:
        """Uniform timesteps, with a share (`--high-noise-share`) drawn again from the noisiest tenth of the schedule.

        Where the shape goes, in every frame, is settled in the first sampling steps: from about t=900 down the
        noisy clip already shows the blobs, and the model reads their places from the pixels rather than from
        "moving left". Uniform sampling gives the steps where only the words can say where (pure noise in, a path
        across the frames out) a few percent of training; the image model, trained that way, learned colour and size
        but never position (`models.shapes.train.Trainer.timesteps`, the same draw).
        """
        total = self.noise.config.num_train_timesteps
        t = torch.randint(0, total, (batch,), generator=self.gen)
        noisiest = torch.rand(batch, generator=self.gen) < self.opts.high_noise_share
        t[noisiest] = torch.randint(total * 9 // 10, total, (int(noisiest.sum()),), generator=self.gen)
        return t

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = min(0.999, (1 + self.step_count) / (10 + self.step_count))
        for ema, live in ((self.ema_unet, self.unet), (self.ema_text, self.text_encoder)):
            for pe, pl in zip(ema.parameters(), live.parameters(), strict=True):
                pe.lerp_(pl, 1 - decay)

    # -- persistence

    def save_state(self, folder: Path) -> None:
        """Tensors in safetensors, everything else in JSON (no pickle), each written whole then renamed."""
        folder.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {"gen": self.gen.get_state()}
        for name, module in self._modules().items():
            tensors.update({f"{name}.{k}": v.contiguous() for k, v in module.state_dict().items()})
        opt = self.opt.state_dict()
        for index, slots in opt["state"].items():
            tensors.update({f"opt.{index}.{k}": torch.as_tensor(v) for k, v in slots.items()})
        version, internal, gauss = self.rng.getstate()
        meta = {
            "step": self.step_count,
            "seconds": self.seconds,
            "rng": [version, list(internal), gauss],
            "param_groups": opt["param_groups"],
        }
        save_file(tensors, folder / "state.safetensors.tmp")
        (folder / "state.json.tmp").write_text(json.dumps(meta))
        (folder / "state.safetensors.tmp").replace(folder / "state.safetensors")
        (folder / "state.json.tmp").replace(folder / "state.json")

    def load_state(self, folder: Path) -> None:
        tensors = load_file(folder / "state.safetensors")
        meta = json.loads((folder / "state.json").read_text())
        for name, module in self._modules().items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, index, slot = key.split(".", 2)
                slots.setdefault(int(index), {})[slot] = value
        self.opt.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
        self.step_count, self.seconds = meta["step"], meta["seconds"]
        version, internal, gauss = meta["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.gen.set_state(tensors["gen"])

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"unet": self.unet, "text": self.text_encoder, "ema_unet": self.ema_unet, "ema_text": self.ema_text}

    def load_exported(self, folder: Path) -> None:
        """Resume from exported weights alone: EMA weights become both live and EMA copies, the optimizer is new."""
        unet = load_file(next((folder / "unet").glob("*.safetensors")))
        text = CLIPTextModel.from_pretrained(folder / "text_encoder")
        for target in (self.unet, self.ema_unet):
            target.load_state_dict(unet)
        for target in (self.text_encoder, self.ema_text):
            target.load_state_dict(text.state_dict())
        meta = json.loads((folder / "training.json").read_text())
        self.step_count, self.seconds = meta["steps"], meta["train_seconds"]
        self.rng = random.Random(self.opts.seed + 1 + self.step_count)
        self.gen = torch.Generator().manual_seed(self.opts.seed + 2 + self.step_count)

    def export(self, folder: Path) -> None:
        pipe = architecture.assemble(self.vae, self.ema_text, self.ema_unet)
        architecture.save_folder(pipe, folder)
        meta = {
            "steps": self.step_count,
            "clips": self.step_count * self.opts.batch,
            "frames": self.opts.frames,
            "train_seconds": round(self.seconds),
            "batch": self.opts.batch,
            "lr": self.opts.lr,
            "high_noise_share": self.opts.high_noise_share,
            "bf16_autocast": self.opts.bf16,
            "threads": torch.get_num_threads(),
            "seed": self.opts.seed,
            **self.origin,
        }
        (folder / "training.json").write_text(json.dumps(meta, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------- driver


def bench(trainer: Trainer, steps: int) -> dict[str, float]:
    """Wall and CPU seconds per step over `steps` steps after one warm-up step (nothing is saved)."""
    trainer.step()
    walls, cpus = [], []
    for _ in tqdm(range(steps), desc="bench"):
        w, c = time.perf_counter(), time.process_time()
        trainer.step()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {
        "wall_median": statistics.median(walls),
        "wall_min": min(walls),
        "cpu_median": statistics.median(cpus),
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    opts = parse(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    trainer = Trainer(opts)
    if opts.bench:
        cost = bench(trainer, opts.bench)
        per_step = cost["wall_median"]
        print(json.dumps({k: round(v, 3) for k, v in cost.items()}))
        print(
            f"{per_step:.2f} s a step (batch {opts.batch} x {opts.frames} frames, {cost['threads']:.0f} threads): "
            f"{int(3600 / per_step)} steps an hour, {int(7200 / per_step)} in two"
        )
        return
    state_path = opts.state
    if (state_path / "state.json").exists():
        trainer.load_state(state_path)
        log.info("resumed from %s at step %d", state_path, trainer.step_count)
    elif (opts.out / "training.json").exists():
        trainer.load_exported(opts.out)
        log.info("resumed from exported weights in %s at step %d", opts.out, trainer.step_count)
    start = time.monotonic()
    last_checkpoint = last_export = start
    bar = tqdm(total=opts.steps, initial=trainer.step_count, desc="clips", smoothing=0.05)
    losses: list[float] = []
    while trainer.step_count < opts.steps and time.monotonic() - start < opts.minutes * 60:
        t0 = time.monotonic()
        losses.append(trainer.step())
        trainer.seconds += time.monotonic() - t0
        bar.update(1)
        if trainer.step_count % 25 == 0:
            mean = sum(losses[-25:]) / len(losses[-25:])
            bar.set_postfix(loss=f"{mean:.4f}")
            log.info("step %d loss %.4f", trainer.step_count, mean)
        now = time.monotonic()
        if now - last_checkpoint > opts.checkpoint_minutes * 60:
            trainer.save_state(state_path)
            last_checkpoint = now
        if now - last_export > opts.export_minutes * 60:
            trainer.export(opts.out)
            last_export = now
            log.info("exported step %d to %s", trainer.step_count, opts.out)
    bar.close()
    trainer.save_state(state_path)
    trainer.export(opts.out)
    log.info("done at step %d; exported to %s", trainer.step_count, opts.out)


if __name__ == "__main__":
    main()
