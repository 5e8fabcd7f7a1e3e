"""A tiny randomly initialised Stable Diffusion pipeline, for tests and a model-less first run.

It tests the plumbing, not the pictures: every part is real diffusers/transformers code (tokenizer, CLIP text
encoder, UNet, VAE, scheduler), only far smaller and with random weights, so a 32x32 image takes milliseconds on a
CPU. It is built on demand into a git-ignored folder and then loaded like any other local model.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

#: Bumped when the recipe changes, so a stale build on disk is rebuilt rather than silently reused.
RECIPE_VERSION = 1
MARKER = "tiny-recipe.json"


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte-to-printable-character table (the same one GPT-2 uses)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def _write_tokenizer_files(folder: Path) -> int:
    """A character-level CLIP BPE vocabulary (no merges) so the tokenizer needs nothing from a hub."""
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return len(vocab)


def is_built(folder: Path) -> bool:
    """True when `folder` holds a complete build of the current recipe."""
    marker = folder / MARKER
    if not (folder / "model_index.json").is_file() or not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("version") == RECIPE_VERSION
    except (OSError, ValueError):
        return False


def build(folder: Path, *, seed: int = 0) -> Path:
    """Build the tiny pipeline with fixed random weights and save it to `folder` (atomically)."""
    import torch
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=folder.parent))
    torch.manual_seed(seed)

    vocab_size = _write_tokenizer_files(staging / "_tok")
    tokenizer = CLIPTokenizer(
        vocab=str(staging / "_tok" / "vocab.json"), merges=str(staging / "_tok" / "merges.txt"), model_max_length=77
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            projection_dim=32,
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
            pad_token_id=vocab_size - 1,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        # Attention only at the half-resolution level: at full resolution it would dominate the cost.
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    # One block: no downsampling, so latents are at pixel resolution like the shipped model's VAE.
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16,),
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    )
    scheduler = DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", steps_offset=1)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(staging)  # type: ignore[attr-defined]
    import shutil

    shutil.rmtree(staging / "_tok")
    (staging / MARKER).write_text(json.dumps({"version": RECIPE_VERSION, "seed": seed}), encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    log.info("built tiny random pipeline in %s", folder)
    return folder


def ensure(folder: Path) -> Path:
    """Build the tiny pipeline into `folder` unless a current build is already there."""
    folder = Path(folder)
    if not is_built(folder):
        build(folder)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the pipeline to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    print(build(args.out))


if __name__ == "__main__":
    main()
