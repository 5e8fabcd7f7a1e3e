"""Does a speed setting keep the shipped model's quality? Its own evaluation, side by side, on held-out prompts.

Renders held-out prompts (canonical captions) with the evaluator's seeds under each setting, reads every picture
back with the evaluator's analyzer (`models.shapes.evaluate`, used read-only) and reports the accuracy per
attribute. A setting is kept only if no attribute drops beyond what a few prompts' noise explains.

Usage: python -m bench.quality [--prompts N] [--batch 25] [--configs fp32-20,bf16-20,bf16-12,...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import common

log = logging.getLogger(__name__)

#: name -> (bf16 autocast + channels-last, steps, sampler)
CONFIGS: dict[str, tuple[bool, int, str]] = {
    "fp32-20": (False, 20, "dpm++_2m"),
    "bf16-20": (True, 20, "dpm++_2m"),
    "bf16-15": (True, 15, "dpm++_2m"),
    "bf16-12": (True, 12, "dpm++_2m"),
    "bf16-10": (True, 10, "dpm++_2m"),
}


def scenes(prompts: int) -> list[Any]:
    """The first held-out scenes, seen and unseen colour-shape pairs in proportion."""
    from models.shapes.heldout import heldout_scenes

    seen, unseen = heldout_scenes()
    n_unseen = max(1, round(prompts * len(unseen) / (len(seen) + len(unseen))))
    return list(seen[: prompts - n_unseen]) + list(unseen[:n_unseen])


@contextlib.contextmanager
def setting(pipe: Any, fast: bool, sampler: str, scheduler_config: Any) -> Iterator[None]:
    from models.loader import make_scheduler
    from worker import speed

    pipe.scheduler = make_scheduler(sampler, scheduler_config)
    with speed.applied(pipe, enabled=fast):
        yield


def evaluate(pipe: Any, chosen: list[Any], config: tuple[bool, int, str], batch: int) -> dict[str, Any]:
    import torch

    from models.shapes.captions import canonical
    from models.shapes.evaluate import score

    fast, steps, sampler = config
    base = pipe.scheduler.config
    images = []
    start = time.perf_counter()
    for i in range(0, len(chosen), batch):
        part = chosen[i : i + batch]
        generators = [torch.Generator().manual_seed(s) for s in range(i, i + len(part))]
        with setting(pipe, fast, sampler, base):
            out = pipe(
                [canonical(s) for s in part], num_inference_steps=steps, guidance_scale=4.0, generator=generators
            )
        images.extend(out.images)
    took = time.perf_counter() - start
    pipe.scheduler = type(pipe.scheduler).from_config(base)
    return {"accuracy": score(tuple(chosen), images), "seconds_per_image": took / len(chosen)}


def weights_info(entry: Any) -> dict[str, Any]:
    """Which weights were scored (the shipped model may still be training): its training record and file time."""
    folder = Path(entry.location(common.ROOT / ".data"))
    info: dict[str, Any] = {"folder": str(folder)}
    with contextlib.suppress(OSError, ValueError):
        info["training"] = json.loads((folder / "training.json").read_text())
    with contextlib.suppress(OSError):
        info["unet_mtime"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime((folder / "unet").stat().st_mtime))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=75)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--out", type=Path, default=common.ROOT / "out" / "bench-quality.json")
    args = parser.parse_args()
    common.quiet()
    common.set_threads(1)
    from diffusers import DiffusionPipeline

    from models import registry
    from models.loader import import_project_components

    entry = registry.load().resolve(None, common.ROOT / ".data")
    folder = Path(entry.location(common.ROOT / ".data"))
    import_project_components(folder)  # the shipped model's own UNet class (coordinate channels)
    pipe = DiffusionPipeline.from_pretrained(str(folder))
    pipe.set_progress_bar_config(disable=True)
    chosen = scenes(args.prompts)
    load = common.Load()
    report: dict[str, Any] = {
        "model": entry.name,
        "prompts": len(chosen),
        "weights": weights_info(entry),
        "configs": {},
    }
    for name in args.configs.split(","):
        report["configs"][name] = result = evaluate(pipe, chosen, CONFIGS[name], args.batch)
        acc = result["accuracy"]
        print(
            f"{name:<16} "
            + " ".join(f"{k} {v:5.1f}%" for k, v in acc.items())
            + f"   {result['seconds_per_image']:.3f} s/image",
            flush=True,
        )
    load.finish()
    report["load"] = load.as_dict()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
