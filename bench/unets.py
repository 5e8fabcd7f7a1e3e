"""UNet speed on a CUDA GPU: the SD 1.5 and SDXL architectures (their real configs, random weights) at 512 and
1024, eager fp16 against the tuned path a worker uses (SDPA + channels-last + torch.compile), in one run.

One iteration is one UNet call on a batch of 2 (classifier-free guidance), which is what a pipeline's it/s counts.
The published A100 figures for SD 1.5 at 512 in fp16 are about 31 it/s eager and 47 it/s compiled; they are shown
beside ours. Random weights run exactly as fast as trained ones: speed depends on the shapes, not the values.

    python bench/unets.py                       # both architectures, 512 and 1024
    python bench/unets.py --arch sd15 --size 512 --steps 50 --json out/unets.json

Without a CUDA GPU it says so and exits 0 (the CPU tests exercise the measuring code on a tiny config).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

CONFIGS = Path(__file__).resolve().parent / "configs"
#: (architecture, size) -> published A100 fp16 it/s, batch 1 with guidance: (eager, compiled).
PUBLISHED: dict[tuple[str, int], tuple[float, float]] = {("sd15", 512): (31.0, 47.0)}
#: Text embedding width of each architecture's text encoder(s).
TEXT_DIM = {"sd15": 768, "sdxl": 2048}


@dataclass
class Measurement:
    arch: str
    size: int
    path: str
    it_s: float
    published_it_s: float | None
    compile_s: float


def load_config(arch: str) -> dict[str, Any]:
    config = json.loads((CONFIGS / f"{arch}_unet.json").read_text(encoding="utf-8"))
    config.pop("_comment", None)
    return config


def build(config: dict[str, Any], device: torch.device, dtype: torch.dtype) -> Any:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel.from_config(config).to(device=device, dtype=dtype).eval()


def inputs(config: dict[str, Any], size: int, device: torch.device, dtype: torch.dtype, batch: int = 2) -> dict:
    """A guided step's inputs at `size` pixels (latents are 1/8 of it), with SDXL's extra conditioning."""
    side = size // 8
    made: dict[str, Any] = {
        "sample": torch.randn(batch, config["in_channels"], side, side, device=device, dtype=dtype),
        "timestep": torch.tensor(500, device=device),
        "encoder_hidden_states": torch.randn(batch, 77, config["cross_attention_dim"], device=device, dtype=dtype),
    }
    if config.get("addition_embed_type") == "text_time":
        pooled = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
        made["added_cond_kwargs"] = {
            "text_embeds": torch.randn(batch, pooled, device=device, dtype=dtype),
            "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * batch, device=device, dtype=dtype),
        }
    return made


def eager(unet: Any) -> Any:
    """The baseline: the classic attention, default memory format, no compilation."""
    from diffusers.models.attention_processor import AttnProcessor

    unet.set_attn_processor(AttnProcessor())
    return unet


def tuned(unet: Any, mode: str) -> Any:
    """What a worker does with IMAGINE_COMPILE=true: SDPA, channels-last, compiled in place."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    unet.set_attn_processor(AttnProcessor2_0())
    unet.to(memory_format=torch.channels_last)
    unet.compile(mode=mode, fullgraph=False)
    return unet


def measure(
    unet: Any, kwargs: dict[str, Any], *, steps: int, warmup: int, sync: Callable[[], None] = lambda: None
) -> tuple[float, float]:
    """(iterations per second over `steps` calls, seconds the warm-up took, which includes any compilation)."""
    with torch.inference_mode():
        started = time.perf_counter()
        for _ in range(warmup):
            unet(**kwargs)
        sync()
        warm = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(steps):
            unet(**kwargs)
        sync()
        took = time.perf_counter() - started
    return steps / took, warm


def run(arch: str, size: int, *, steps: int, warmup: int, mode: str, device: torch.device) -> list[Measurement]:
    config = load_config(arch)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    results = []
    published = PUBLISHED.get((arch, size))
    for path in ("eager", "tuned"):
        unet = build(config, device, torch.float16)
        unet = eager(unet) if path == "eager" else tuned(unet, mode)
        rate, warm = measure(unet, inputs(config, size, device, torch.float16), steps=steps, warmup=warmup, sync=sync)
        reference = None if published is None else published[0 if path == "eager" else 1]
        results.append(Measurement(arch, size, path, round(rate, 2), reference, round(warm, 1)))
        log.info("%s %d %s: %.2f it/s", arch, size, path, rate)
        del unet
        torch.cuda.empty_cache()
    return results


def table(results: list[Measurement], device_name: str) -> str:
    lines = [f"UNet it/s (batch 2 = one guided step, fp16) on {device_name}; A100 published figures beside", ""]
    lines.append(
        f"{'arch':6} {'size':>5} {'eager':>8} {'tuned':>8} {'speed-up':>9} {'A100 eager':>11} {'A100 comp.':>11}"
    )
    by_key: dict[tuple[str, int], dict[str, Measurement]] = {}
    for m in results:
        by_key.setdefault((m.arch, m.size), {})[m.path] = m
    for (arch, size), paths in by_key.items():
        e, t = paths["eager"], paths["tuned"]
        pub = PUBLISHED.get((arch, size))
        ref = (f"{pub[0]:>11.1f} {pub[1]:>11.1f}") if pub else f"{'-':>11} {'-':>11}"
        lines.append(f"{arch:6} {size:>5} {e.it_s:>8.2f} {t.it_s:>8.2f} {t.it_s / e.it_s:>8.2f}x {ref}")
    lines.append("")
    lines.append("tuned = SDPA attention + channels-last + torch.compile; compile time is in the JSON (compile_s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", choices=["sd15", "sdxl"], help="default: both")
    parser.add_argument("--size", action="append", type=int, help="pixels per side; default: 512 and 1024")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile-mode", default="max-autotune-no-cudagraphs")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not torch.cuda.is_available():
        print("no CUDA GPU here: the UNet benchmark needs one (the CPU tests still run). Nothing measured.")
        return 0
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    results: list[Measurement] = []
    for arch in args.arch or ["sd15", "sdxl"]:
        for size in args.size or [512, 1024]:
            results += run(arch, size, steps=args.steps, warmup=args.warmup, mode=args.compile_mode, device=device)
    print(table(results, torch.cuda.get_device_name(device)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(m) for m in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
