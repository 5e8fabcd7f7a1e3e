"""The pipeline-call rows of the README's latency budget on a GPU: `python -m bench.gpu` (needs CUDA).

`make bench` measures the whole path on this CPU; the parts around the pipeline call (the bot, Redis, RQ, PNG and
MP4 encoding, the post to Discord) run on the CPU wherever the worker runs, so on a GPU machine only the call itself
changes. This times that call for both shipped models, as the worker makes it (20 steps, guidance 4; a clip is
8 frames): the image model at batch 1 and 8, the clip model at batch 1, in float32 and in float16 (what the worker
picks on a GPU: `dtype = "auto"`), each the median of `--repeat` calls after warm-up, the GPU synchronised around
each. It prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a red star in the top left corner on a black background"
CLIP_PROMPT = "a red circle moving right on a blue background"


def load(folder: Path, dtype: torch.dtype) -> Any:
    from diffusers import DiffusionPipeline

    import models.clips.unet
    import models.shapes.unet  # noqa: F401

    pipe = DiffusionPipeline.from_pretrained(folder, torch_dtype=dtype).to("cuda")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def timed(call: Any, repeat: int, warmup: int = 2) -> float:
    """Median seconds of `call()` over `repeat` runs after `warmup`, synchronised."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeat):
        torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(repeat: int) -> list[dict[str, Any]]:
    rows = []
    for dtype in (torch.float32, torch.float16):
        name = str(dtype).removeprefix("torch.")
        image = load(ROOT / "models" / "shapes" / "weights", dtype)
        for batch in (1, 8):

            def draw(batch: int = batch, image: Any = image) -> None:
                gens = [torch.Generator().manual_seed(i) for i in range(batch)]
                image([PROMPT] * batch, num_inference_steps=20, guidance_scale=4.0, generator=gens, output_type="pil")

            seconds = timed(draw, repeat)
            rows.append({"model": "shapes", "dtype": name, "batch": batch, "s_per_call": seconds,
                         "s_per_item": seconds / batch})  # fmt: skip
        clip = load(ROOT / "models" / "clips" / "weights", dtype)

        def animate(clip: Any = clip) -> None:
            clip(CLIP_PROMPT, num_frames=8, num_inference_steps=20, guidance_scale=4.0,
                 generator=torch.Generator().manual_seed(0), output_type="pil")  # fmt: skip

        seconds = timed(animate, repeat)
        rows.append({"model": "clips", "dtype": name, "batch": 1, "s_per_call": seconds, "s_per_item": seconds})
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--out", type=Path, default=ROOT / "out" / "bench-gpu.json")
    a = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench.gpu needs a CUDA GPU; `make bench` measures this CPU")
    torch.backends.cuda.matmul.allow_tf32 = True
    rows = measure(a.repeat)
    device = torch.cuda.get_device_name()
    print(f"pipeline calls on {device} (median of {a.repeat}; 20 steps, guidance 4)")
    print(f"{'model':<8}{'dtype':<9}{'batch':>6}{'s a call':>11}{'s an item':>11}")
    for r in rows:
        print(f"{r['model']:<8}{r['dtype']:<9}{r['batch']:>6}{r['s_per_call']:>11.4f}{r['s_per_item']:>11.4f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"device": device, "repeat": a.repeat, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
