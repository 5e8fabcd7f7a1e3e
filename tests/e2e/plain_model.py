"""A test model whose pictures have a composition that survives image-to-image: "plain".

The tiny model's random VAE scrambles any picture it encodes, so with it a variation cannot be told from a re-roll.
"plain" is the tiny pipeline with weights set by hand so the question has an answer: the VAE is close to the
identity (every residual branch zeroed, the convolutions pass the colour channels through, the norms kept in
SiLU's near-linear range, latents at unit scale), and the UNet predicts no noise. Text-to-image then draws the
seed's noise itself, and image-to-image keeps as much of the source as the strength leaves, as a real model does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

PLAIN_MARKER = "plain-recipe.json"
OFFSET = 6.0  # GroupNorm bias: SiLU(6 + z) is almost linear in z for |z| < 3


def _identity_conv(conv, channels: int, bias: float = 0.0) -> None:  # type: ignore[no-untyped-def]
    import torch

    with torch.no_grad():
        conv.weight.zero_()
        centre = conv.weight.shape[-1] // 2
        for c in range(channels):
            conv.weight[c, c, centre, centre] = 1.0
        if conv.bias is not None:
            conv.bias.fill_(bias)


def _zero(module) -> None:  # type: ignore[no-untyped-def]
    import torch

    with torch.no_grad():
        for p in module.parameters():
            p.zero_()


def _norm(norm) -> None:  # type: ignore[no-untyped-def]
    import torch

    with torch.no_grad():
        norm.weight.fill_(1.0)
        norm.bias.fill_(OFFSET)


def build_plain(tiny_dir: Path, out: Path) -> Path:
    """Copy the tiny pipeline to `out` and set its VAE and UNet weights as described above (idempotent)."""
    if (out / PLAIN_MARKER).is_file():
        return out
    from diffusers import AutoencoderKL, UNet2DConditionModel

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(tiny_dir, out)
    vae = AutoencoderKL.from_pretrained(out / "vae")
    enc, dec = vae.encoder, vae.decoder
    for resnet in [
        *enc.down_blocks[0].resnets,
        *enc.mid_block.resnets,
        *dec.mid_block.resnets,
        *dec.up_blocks[0].resnets,
    ]:
        _zero(resnet.conv2)
    for attention in [*(enc.mid_block.attentions or []), *(dec.mid_block.attentions or [])]:
        if attention is not None:
            _zero(attention.to_out[0])
    _identity_conv(enc.conv_in, 3)
    _norm(enc.conv_norm_out)
    latent = vae.config.latent_channels
    _identity_conv(enc.conv_out, 3, bias=-OFFSET)
    import torch

    with torch.no_grad():
        enc.conv_out.bias[latent:] = -30.0  # log-variance: sampling the latent adds (almost) nothing
    if vae.quant_conv is not None:
        _identity_conv(vae.quant_conv, 2 * latent)
    if vae.post_quant_conv is not None:
        _identity_conv(vae.post_quant_conv, latent)
    _identity_conv(dec.conv_in, 3)
    _norm(dec.conv_norm_out)
    _identity_conv(dec.conv_out, 3, bias=-OFFSET)
    vae.register_to_config(scaling_factor=1.0)
    vae.save_pretrained(out / "vae")
    unet = UNet2DConditionModel.from_pretrained(out / "unet")
    _zero(unet.conv_out)
    unet.save_pretrained(out / "unet")
    (out / PLAIN_MARKER).write_text(json.dumps({"from": str(tiny_dir)}))
    return out
