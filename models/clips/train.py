"""The clip model's recipe: `python -m models.clips.train`.

Starts from the image model (`models/shapes/weights`): its frozen VAE, its text encoder with the motion words
added, and its UNet's weights in the clip UNet's spatial layers, first convolution, layout and pooled-prompt
embedding, its temporal layers at the identity (see `architecture.inflate`), so the clip UNet starts by drawing
every frame as the image model would and what is left to learn is mostly motion. Then:

1. At `--size 64` (the default), a two-level VAE that decodes the image model's 32x32 latents as 64x64 frames
   (`decoder`), trained once and kept in the state folder.
2. The layout warm-up (`warmup`, `--layout-steps`): the clip layout and the text encoder alone learn where the shape
   is in every frame, through the frozen image UNet, a clip's frames taken as pictures; once, kept in the state
   folder. It is what makes "moving left" move left on a CPU's budget (see `warmup`).
3. v-prediction on the image model's cosine schedule over whole clips, a quarter of the timesteps from the noisiest
   tenth (`Trainer.timesteps`), AdamW with warm-up, 10% caption dropout, an EMA of the weights, and the image
   model's attribute probe on the text, here reading colour, shape, motion and background (`CLASSES`).

Clips are rendered as they are needed (a clip is about a millisecond of Pillow), so there is no data set to build or
cache, and the random streams that draw them (all on the CPU, whatever `--device` trains) are part of the
checkpoint. Seeded and resumable: state (weights, EMA, probe, optimizer, step, random states; safetensors and JSON)
is checkpointed every few minutes to a git-ignored folder, and the EMA weights are exported as a
`TextToVideoSDPipeline` folder (what the registry points at) every export interval and at the end. `--bench N`
times N steps and prints the cost per step instead.

Budget. The defaults are a CPU's: a 64x64 VAE of (16, 32) channels, 2,000 steps of 16 frames (5.6 minutes on a
2-core AMD EPYC with AVX512-BF16; 0.27 s a step on a 2-core Xeon), the layout warm-up, 600 steps of 8 clips (6.0
minutes on that EPYC), then 1,100 UNet steps of 8 clips of 8 frames (8,800 clips; 2.8-3.4 s a step there with bf16
autocast, 55 minutes; 4.5-5.3 s on the Xeon). On that EPYC the whole run took 67 minutes; what it reached is on
the shipped model's card (`models.clips.card --cpu-run`). The shipped weights were trained on a lent H100 before
the recipe had its layout warm-up: `--device cuda --batch 32` for 2,968 steps
(94,976 clips, 9.5 minutes) and the VAE at `--decoder-channels 32,64 --decoder-batch 64 --decoder-steps 3000`
(70 s); their training.json and card say so. `--minutes` caps a run (a later run resumes it), `--threads 2` gives
it both cores, and `--bench N` measures a step here first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import statistics
import time
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from safetensors.torch import load_file
from tqdm import tqdm
from transformers import CLIPTextModel

from models import training
from models.shapes.attributes import AttributeProbe, encode_labels
from models.shapes.autoencoder import to_unit, train_vae
from models.shapes.world import BACKGROUNDS, COLORS, SHAPES

from . import architecture, decoder, warmup
from .captions import described
from .heldout import is_heldout
from .options import DEFAULT_INIT, Options, parse
from .unet import CoordUNet3DConditionModel
from .world import MOTIONS, ClipScene, random_clip_scene, render_clip

log = logging.getLogger(__name__)

__all__ = ["Options", "Trainer", "main", "parse"]

CLASSES: dict[str, tuple[str, ...]] = {
    "color": tuple(COLORS),
    "shape": SHAPES,
    "motion": MOTIONS,
    "background": tuple(BACKGROUNDS),
}
"""What the text probe reads from a caption (`models.shapes.attributes`): the motion words are new to the text
encoder and the UNet ignores them at first, the way the image UNet ignored the position words, which collapsed."""


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
        self.device = torch.device(opts.device)
        vae, text_encoder, unet, self.origin = starting_parts(opts)
        self.vae, self.text_encoder, self.unet = vae.to(self.device), text_encoder.to(self.device), unet.to(self.device)
        self.tokenizer = architecture.make_tokenizer()
        self.noise = architecture.make_train_scheduler()
        self.alphas = self.noise.alphas_cumprod.float().to(self.device)
        self.step_count = 0
        self.clips = 0
        """Clips trained on so far: steps times batch, summed over runs (a resumed run may use another batch)."""
        self.seconds = 0.0
        self.history: list[dict] = []
        """Notes on earlier runs these weights went through (a GPU run, a resume from an export), carried along."""
        self.ema_unet = deepcopy(self.unet).requires_grad_(False)
        self.ema_text = deepcopy(self.text_encoder).requires_grad_(False)
        self.probe = AttributeProbe(architecture.TEXT_WIDTH, CLASSES).to(self.device)
        self.probe_losses: list[float] = []
        self.output_vae = vae
        """The VAE the exported pipeline decodes with: the 64x64 one (`decoder`) once `prepare_output` has run."""
        self.decoder_report: dict = {}
        self.warmup_report: dict = {}
        params = [*self.parameters(), *self.probe.parameters()]
        self.opt = torch.optim.AdamW(params, lr=opts.lr, weight_decay=0.01)
        self.rng = random.Random(opts.seed + 1)
        self.gen = torch.Generator().manual_seed(opts.seed + 2)

    def parameters(self) -> list[torch.nn.Parameter]:
        """The pipeline's trained parameters (the probe's are trained too, but only serve training)."""
        return list(self.unet.parameters()) + list(self.text_encoder.parameters())

    def prepare_output(self) -> None:
        """At `--size 64`, the VAE that decodes this model's latents at 64x64 (trained once, then kept)."""
        if self.opts.size == 64:
            self.output_vae, self.decoder_report = decoder.ensure(
                self.opts.state / "vae-64", self.vae, self.opts.decoder_steps, self.opts.seed + 5, self.opts.device,
                exported=self.opts.out, batch=self.opts.decoder_batch, channels=self.opts.decoder_channels,
            )  # fmt: skip

    def warm_up_layout(self) -> None:
        """Before the first UNet step of a run from the image model, the layout warm-up (`warmup`); kept in the
        state folder, so a resumed run only reads its report."""
        folder = self.opts.state / warmup.FOLDER
        if self.step_count == 0 and self.opts.init is not None and self.opts.layout_steps > 0:
            self.warmup_report = warmup.run(self, self.opts.init, self.opts.layout_steps, self.opts.layout_lr, folder)
        elif (folder / warmup.REPORT).is_file():
            self.warmup_report = json.loads((folder / warmup.REPORT).read_text())

    def step(self) -> float:
        opts = self.opts
        for group in self.opt.param_groups:
            group["lr"] = opts.lr * min(1.0, (self.step_count + 1) / opts.warmup)
        # The UNet's temporal layers use dropout, which draws from torch's global stream: seeding it by step keeps a
        # resumed run on exactly the path of an uninterrupted one.
        torch.manual_seed(opts.seed * 1_000_003 + self.step_count)
        ids, labels, x0 = self.batch(self.rng)
        # Every random draw comes from the CPU streams, whatever the device: a run is the same run on either.
        t = self.timesteps(opts.batch)
        noise = torch.randn(x0.shape, generator=self.gen).to(self.device)
        t, ids = t.to(self.device), ids.to(self.device)
        noisy, target = training.v_prediction(x0, noise, self.alphas, t)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts.bf16):
            text = self.text_encoder(ids)[0]
            pred = self.unet(noisy, t, encoder_hidden_states=text).sample
        loss = F.mse_loss(pred.float(), target)
        probe_loss = self.probe.loss(text, {k: v.to(self.device) for k, v in labels.items()})
        self.opt.zero_grad(set_to_none=True)
        (loss + opts.probe_weight * probe_loss).backward()
        torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)
        self.opt.step()
        self.step_count += 1
        self.clips += opts.batch
        self._update_ema()
        self.probe_losses.append(probe_loss.item())
        return loss.item()

    def batch(self, rng: random.Random) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """A batch of training clips drawn from `rng`: token ids, the probe's labels, latents (B, C, F, H, W)."""
        opts = self.opts
        scenes, pixels = draw_batch(rng, opts.batch, opts.frames)
        x0 = encode_clips(self.vae, pixels.to(self.device))
        captions = [
            None if rng.random() < opts.caption_drop else described(s, rng, opts.background_drop) for s in scenes
        ]
        prompts = ["" if c is None else c[0] for c in captions]
        labels = encode_labels([None if c is None else c[1] for c in captions], CLASSES)
        return self.tokenize(prompts), labels, x0

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        """Token ids, padded to the text encoder's length."""
        return self.tokenizer(
            prompts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True,
            return_tensors="pt",
        ).input_ids  # fmt: skip

    def timesteps(self, batch: int) -> torch.Tensor:
        """A quarter (`--high-noise-share`) from the noisiest tenth: where the shape goes, in every frame, is settled
        in the first sampling steps, and only the words can say where (`training.noisy_heavy_timesteps`)."""
        total = self.noise.config.num_train_timesteps
        return training.noisy_heavy_timesteps(total, batch, self.opts.high_noise_share, self.gen)

    def _update_ema(self) -> None:
        pairs = ((self.ema_unet, self.unet), (self.ema_text, self.text_encoder))
        training.update_ema(pairs, training.ema_decay(self.step_count))

    # -- persistence

    def save_state(self, folder: Path) -> None:
        meta = {"step": self.step_count, "clips": self.clips, "seconds": self.seconds, "history": self.history}
        training.save_state(folder, self._modules(), self.opt, self.rng, self.gen, meta)

    def load_state(self, folder: Path) -> None:
        meta = training.load_state(folder, self._modules(), self.opt, self.rng, self.gen)
        self.step_count, self.seconds = meta["step"], meta["seconds"]
        self.clips = meta.get("clips", self.step_count * self.opts.batch)
        self.history = meta.get("history", [])

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {
            "unet": self.unet,
            "text": self.text_encoder,
            "ema_unet": self.ema_unet,
            "ema_text": self.ema_text,
            "probe": self.probe,
        }

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
        self.clips = meta.get("clips", self.step_count * self.opts.batch)
        self.history = meta.get("history", [])
        self.rng = random.Random(self.opts.seed + 1 + self.step_count)
        self.gen = torch.Generator().manual_seed(self.opts.seed + 2 + self.step_count)

    def export(self, folder: Path) -> None:
        pipe = architecture.assemble(self.output_vae, deepcopy(self.ema_text).cpu(), deepcopy(self.ema_unet).cpu())
        architecture.save_folder(pipe, folder)
        meta = {
            "steps": self.step_count,
            "clips": self.clips,
            "frames": self.opts.frames,
            "size": self.opts.size,
            "probe_weight": self.opts.probe_weight,
            "device": self.device.type,
            "train_seconds": round(self.seconds),
            "batch": self.opts.batch,
            "lr": self.opts.lr,
            "high_noise_share": self.opts.high_noise_share,
            "bf16_autocast": self.opts.bf16,
            "threads": torch.get_num_threads(),
            "seed": self.opts.seed,
            **self.origin,
        }
        if self.decoder_report:
            meta["decoder"] = self.decoder_report
        if self.warmup_report:
            meta["layout_warmup"] = self.warmup_report
        if self.history:
            meta["history"] = self.history
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
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
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
    training.resume(trainer, opts.state, opts.out)
    trainer.prepare_output()
    trainer.warm_up_layout()
    schedule = training.Schedule(opts.steps, opts.minutes, opts.checkpoint_minutes, opts.export_minutes)
    training.train(trainer, schedule, opts.state, opts.out, desc="clips", log_every=25)


if __name__ == "__main__":
    main()
