"""A tiny randomly initialised clip pipeline (`TextToVideoSDPipeline`), built on demand, for the plumbing.

The clip counterpart of `models.tiny`: every part is the real thing (the clip model's word-level tokenizer, a CLIP
text encoder, the clip model's UNet class from `models.clips.unet`, a one-level VAE, the shipped schedule), only far
smaller and with random weights, so eight frames take a fraction of a second on a CPU. It stands in for the shipped
clip model until that model's weights are trained (the registry's `tiny-clips`, the fallback of `clips`), and in
tests.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

#: Bumped when the recipe changes, so a stale build on disk is rebuilt rather than silently reused.
RECIPE_VERSION = 2
MARKER = "tiny-recipe.json"


def is_built(folder: Path) -> bool:
    marker = Path(folder) / MARKER
    if not (Path(folder) / "model_index.json").is_file() or not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("version") == RECIPE_VERSION
    except (OSError, ValueError):
        return False


def build(folder: Path, *, seed: int = 0) -> Path:
    """Build the tiny clip pipeline with fixed random weights into `folder` (atomically)."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel

    from models.shapes.tokenizer import MAX_LENGTH, SPECIAL

    from . import architecture

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-clips-", dir=folder.parent))
    torch.manual_seed(seed)
    vocab = len(architecture.make_tokenizer())
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            max_position_embeddings=MAX_LENGTH,
            pad_token_id=SPECIAL.index("[PAD]"),
            bos_token_id=SPECIAL.index("[BOS]"),
            eos_token_id=SPECIAL.index("[EOS]"),
            projection_dim=32,
        )
    )
    unet = architecture.make_unet((16, 16), head_dim=8, text_width=32)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        block_out_channels=(16,),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
        mid_block_add_attention=False,
    )
    pipe = architecture.assemble(vae, text_encoder, unet)
    architecture.save_folder(pipe, staging)
    (staging / MARKER).write_text(json.dumps({"version": RECIPE_VERSION, "seed": seed}), encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    log.info("built tiny random clip pipeline in %s", folder)
    return folder


def ensure(folder: Path) -> Path:
    """Build the tiny clip pipeline into `folder` unless a current build is already there."""
    if not is_built(Path(folder)):
        build(Path(folder))
    return Path(folder)
