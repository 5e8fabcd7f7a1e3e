"""The shipped model's recipe: `python -m models.shapes.train`.

Two stages, both seeded and resumable:
1. a one-level VAE learns to be (nearly) the identity on the world's pictures, once; it is then frozen, since
   the UNet's latents depend on it (`models/shapes/autoencoder.py`);
2. the UNet and the text encoder learn together: v-prediction on a cosine schedule with a share of timesteps
   drawn again from the noisiest tenth, AdamW with warm-up, 10% caption dropout, an attribute probe that keeps the
   text encoder telling every attribute apart (`models/shapes/attributes.py`), an EMA of the weights, bf16
   autocast where the CPU has it. The settings are in `models/shapes/options.py`.

State (weights, EMA, optimizer, step, random states; safetensors and JSON, `models/training.py`) is checkpointed
every few minutes to a git-ignored folder; the EMA weights are exported as a pipeline folder (the one the registry
points at) every export interval. Training resumes from whichever of the two is further along; from the export,
with a fresh optimizer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from copy import deepcopy
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel

from models import training

from . import architecture
from .attributes import AttributeProbe, encode_labels
from .autoencoder import encode, render_dataset, to_unit, train_vae
from .captions import described
from .options import Options, parse

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- stage 2: UNet


class Trainer:
    """Holds the models, the EMA copies and the optimizer; one `step()` is one batch."""

    def __init__(self, opts: Options, vae: AutoencoderKL, latents: torch.Tensor, scenes: list) -> None:
        self.opts = opts
        self.vae = vae
        self.latents = latents * vae.config.scaling_factor
        self.scenes = scenes
        self.tokenizer = architecture.make_tokenizer()
        self.noise = architecture.make_train_scheduler()
        self.alphas = self.noise.alphas_cumprod.float()
        self.step_count = 0
        self.seconds = 0.0
        torch.manual_seed(opts.seed)
        self.unet = architecture.make_unet()
        self.text_encoder = architecture.make_text_encoder(len(self.tokenizer))
        self.ema_unet = deepcopy(self.unet).requires_grad_(False)
        self.ema_text = deepcopy(self.text_encoder).requires_grad_(False)
        self.probe = AttributeProbe(architecture.TEXT_WIDTH)
        self.probe_losses: list[float] = []
        self.ema_start = 0
        """Step the EMA's warm-up counts from: 0, or the step the text encoder was last started afresh."""
        self.history: list[dict] = []
        """Changes made to the model along the way (architecture grown, parts started afresh), for the card."""
        params = [*self.unet.parameters(), *self.text_encoder.parameters(), *self.probe.parameters()]
        self.opt = torch.optim.AdamW(params, lr=opts.lr, weight_decay=0.01)
        self.rng = random.Random(opts.seed + 1)
        self.gen = torch.Generator().manual_seed(opts.seed + 2)

    # -- the algorithm

    def step(self) -> float:
        opts = self.opts
        for group in self.opt.param_groups:
            group["lr"] = opts.lr * min(1.0, (self.step_count + 1) / opts.warmup)
        idx = torch.randint(0, len(self.latents), (opts.batch,), generator=self.gen)
        x0 = self.latents[idx]
        captions = [
            None if self.rng.random() < opts.caption_drop else described(self.scenes[i], self.rng, opts.attribute_drop)
            for i in idx.tolist()
        ]
        prompts = ["" if d is None else d[0] for d in captions]
        labels = encode_labels([None if d is None else d[1] for d in captions])
        ids = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        t = self.timesteps(opts.batch)
        noise = torch.randn(x0.shape, generator=self.gen)
        noisy, target = training.v_prediction(x0, noise, self.alphas, t)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts.bf16):
            text = self.text_encoder(ids)[0]
            pred = self.unet(noisy, t, encoder_hidden_states=text).sample
        loss = F.mse_loss(pred.float(), target)
        probe_loss = self.probe.loss(text, labels)
        self.opt.zero_grad(set_to_none=True)
        (loss + opts.probe_weight * probe_loss).backward()
        torch.nn.utils.clip_grad_norm_(list(self.unet.parameters()) + list(self.text_encoder.parameters()), 1.0)
        self.opt.step()
        self.step_count += 1
        self._update_ema()
        self.probe_losses.append(probe_loss.item())
        return loss.item()

    def timesteps(self, batch: int) -> torch.Tensor:
        """A share (`--high-noise-share`) from the noisiest tenth, where only the words can say where a shape goes
        (`training.noisy_heavy_timesteps`); uniform sampling taught colour and size but never position."""
        total = self.noise.config.num_train_timesteps
        return training.noisy_heavy_timesteps(total, batch, self.opts.high_noise_share, self.gen)

    def _update_ema(self) -> None:
        pairs = ((self.ema_unet, self.unet), (self.ema_text, self.text_encoder))
        training.update_ema(pairs, training.ema_decay(self.step_count - self.ema_start))

    # -- persistence

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {
            "unet": self.unet,
            "text_encoder": self.text_encoder,
            "ema_unet": self.ema_unet,
            "ema_text": self.ema_text,
            "probe": self.probe,
        }

    def save_state(self, folder: Path) -> None:
        meta = {"step": self.step_count, "seconds": self.seconds, "ema_start": self.ema_start, "history": self.history}
        training.save_state(folder, self._modules(), self.opt, self.rng, self.gen, meta)

    def load_state(self, folder: Path) -> None:
        meta = training.load_state(folder, self._modules(), self.opt, self.rng, self.gen)
        self.step_count, self.seconds = meta["step"], meta["seconds"]
        self.ema_start, self.history = meta["ema_start"], meta["history"]

    def reset_text_encoder(self) -> None:
        """Start the text encoder (and its EMA, its Adam moments, the probe) afresh; the UNet keeps what it knows.

        For an encoder that has collapsed words the UNet never used (see `attributes`): the probe alone could not
        pull "right", "top" and "bottom" apart again in 300 steps, while a fresh encoder trained with it from the
        first step keeps them apart. The EMA restarts its warm-up so exports follow the new encoder quickly.
        """
        torch.manual_seed(self.opts.seed + self.step_count)
        fresh = architecture.make_text_encoder(len(self.tokenizer))
        self.text_encoder.load_state_dict(fresh.state_dict())
        self.ema_text.load_state_dict(fresh.state_dict())
        self.probe.load_state_dict(AttributeProbe(architecture.TEXT_WIDTH).state_dict())
        for param in [*self.text_encoder.parameters(), *self.probe.parameters()]:
            self.opt.state.pop(param, None)
        self.ema_start = self.step_count
        self.history.append({"step": self.step_count, "event": "text encoder started afresh"})

    def load_exported(self, folder: Path) -> None:
        """Resume from committed weights alone: EMA weights become both live and EMA copies."""
        unet = load_file(folder / "unet" / "diffusion_pytorch_model.safetensors")
        text = CLIPTextModel.from_pretrained(folder / "text_encoder")
        for target in (self.unet, self.ema_unet):
            fresh = warm_start(target, unet)
        if fresh:
            log.info("parts new since %s start as made: %s", folder, ", ".join(fresh))
        for target in (self.text_encoder, self.ema_text):
            target.load_state_dict(text.state_dict())
        meta = json.loads((folder / "training.json").read_text())
        self.step_count, self.seconds = meta["steps"], meta["train_seconds"]
        self.history = meta.get("history", [])

    def export(self, folder: Path) -> None:
        pipe = architecture.assemble(self.vae, self.ema_text, self.ema_unet)
        architecture.save_folder(pipe, folder)
        meta = {
            "steps": self.step_count,
            "samples": self.step_count * self.opts.batch,
            "train_seconds": round(self.seconds),
            "batch": self.opts.batch,
            "lr": self.opts.lr,
            "bf16_autocast": self.opts.bf16,
            "scenes": self.opts.scenes,
            "seed": self.opts.seed,
            "high_noise_share": self.opts.high_noise_share,
            "probe_weight": self.opts.probe_weight,
            "history": self.history,
        }
        (folder / "training.json").write_text(json.dumps(meta, indent=2) + "\n")


def warm_start(model: torch.nn.Module, source: dict[str, torch.Tensor]) -> list[str]:
    """Load `source` into `model` where it fits, so an architecture can grow without losing what was learned.

    A first convolution that now reads more input channels keeps its old weights for the old channels and starts
    at zero for the new ones (the output is unchanged until training finds a use for them); parameters the source
    lacks keep their fresh initialisation. Returns the names of those fresh parameters.
    """
    target = model.state_dict()
    loaded, fresh = {}, []
    for key, value in target.items():
        old = source.get(key)
        if old is not None and old.shape == value.shape:
            loaded[key] = old
        elif old is not None and old.ndim == 4 and old.shape[1] < value.shape[1] and old.shape[2:] == value.shape[2:]:
            grown = torch.zeros_like(value)
            grown[:, : old.shape[1]] = old
            loaded[key] = grown
        else:
            fresh.append(key)
    model.load_state_dict(loaded, strict=False)
    return sorted({key.rsplit(".", 1)[0] for key in fresh})


# ---------------------------------------------------------------------------------------------- driver


def load_or_train_vae(opts: Options, pixels: torch.Tensor) -> AutoencoderKL:
    for folder in (opts.state / "vae", opts.out / "vae"):
        if (folder / "config.json").exists():
            log.info("using the frozen VAE in %s", folder)
            return AutoencoderKL.from_pretrained(folder).eval().requires_grad_(False)
    vae = train_vae(pixels, opts.vae_steps, opts.seed)
    vae.save_pretrained(opts.state / "vae")
    return vae


def cached_latents(opts: Options, vae: AutoencoderKL, pixels: torch.Tensor) -> torch.Tensor:
    """Encoding the whole set takes minutes on a CPU: keep it, keyed by what it depends on."""
    digest = hashlib.sha256(pixels.numpy().tobytes())
    for tensor in vae.state_dict().values():
        digest.update(tensor.numpy().tobytes())
    path = opts.state / f"latents-{digest.hexdigest()[:16]}.safetensors"
    if path.exists():
        return load_file(path)["latents"]
    latents = encode(vae, pixels)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*opts.state.glob("latents-*.pt"), *opts.state.glob("latents-*.safetensors")]:
        stale.unlink()
    save_file({"latents": latents.contiguous()}, path)
    return latents


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    opts = parse(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    pixels, scenes = render_dataset(opts.scenes, opts.seed)
    vae = load_or_train_vae(opts, pixels)
    latents = cached_latents(opts, vae, pixels)
    with torch.no_grad():
        recon = vae.decode(latents[:512]).sample
        log.info("VAE reconstruction MSE %.6f (pixels in [-1, 1])", F.mse_loss(recon, to_unit(pixels[:512])).item())
    trainer = Trainer(opts, vae, latents, scenes)
    if (opts.state / "state.pt").exists():
        log.warning("ignoring %s: checkpoints are safetensors and JSON now (no pickle)", opts.state / "state.pt")
    training.resume(trainer, opts.state, opts.out)
    if opts.reset_text:
        trainer.reset_text_encoder()
        log.info("text encoder started afresh at step %d", trainer.step_count)
        trainer.save_state(opts.state)  # kept even if this run trains no step
        trainer.export(opts.out)
    schedule = training.Schedule(opts.steps, opts.minutes, opts.checkpoint_minutes, opts.export_minutes)
    training.train(trainer, schedule, opts.state, opts.out, desc="unet")


if __name__ == "__main__":
    main()
