"""worker/gpu.py: the GPU decisions, on a CPU. Only what needs a card is faked (its memory size, bf16 support,
`.to("cuda")`, offload hooks, the compiler); the pipelines are real tiny ones."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from imagine import keys, queue
from imagine.contract import JobSpec
from models import families
from models.registry import ModelEntry
from tests.helpers import make_settings, run_burst
from worker import gpu, startup
from worker.context import WorkerContext
from worker.gpu import GIB, Policy

CPU, CUDA0, CUDA1 = torch.device("cpu"), torch.device("cuda", 0), torch.device("cuda", 1)


def entry(**fields: Any) -> ModelEntry:
    values: dict[str, Any] = dict(name="m", source="tiny", width=32, height=32, steps=2, guidance=1.0, sampler="euler")
    values.update(fields)
    return ModelEntry(**values)


def test_one_worker_per_gpu_keeps_its_card() -> None:
    assert gpu.device_for(entry(), Policy(device="cuda:1"), CUDA1) == CUDA1
    assert gpu.device_for(entry(device="cpu"), Policy(device="cuda:1"), CUDA1) == CPU  # cpu is always honoured
    assert gpu.device_for(entry(device="cuda:1"), Policy(device="auto"), CUDA0) == CUDA1  # pinned, auto worker


def test_a_model_pinned_to_another_card_stays_on_the_workers(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert gpu.device_for(entry(device="cuda:0"), Policy(device="cuda:1"), CUDA1) == CUDA1
    assert "this worker owns cuda:1" in caplog.text


@pytest.mark.parametrize(
    ("family", "device", "bf16", "expected"),
    [
        ("sd15", CPU, True, torch.float32),
        ("sd15", CUDA0, True, torch.float16),
        ("sdxl", CUDA0, True, torch.float16),
        ("flux", CUDA0, True, torch.bfloat16),
        ("flux", CUDA0, False, torch.float16),  # a card without bf16 (pre-Ampere) gets fp16
        ("wan", torch.device("mps"), True, torch.float16),
    ],
)
def test_half_precision_on_a_gpu_by_family(family: str, device: torch.device, bf16: bool, expected: Any) -> None:
    assert gpu.dtype_for(entry(), Policy(), device, families.get(family), bf16) == expected


def test_explicit_precision_wins() -> None:
    assert gpu.dtype_for(entry(dtype="fp32"), Policy(), CUDA0, families.get("sd15"), True) == torch.float32
    assert gpu.dtype_for(entry(), Policy(dtype="float32"), CUDA0, families.get("sd15"), True) == torch.float32
    assert gpu.dtype_for(entry(dtype="bf16"), Policy(dtype="float32"), CUDA0, None, True) == torch.bfloat16


def test_model_offload_on_small_cards_only() -> None:
    auto = Policy()
    assert gpu.offload_for(auto, CUDA0, 8 * GIB) == "model"
    assert gpu.offload_for(auto, CUDA0, 24 * GIB) == "none"
    assert gpu.offload_for(auto, CPU, None) == "none"
    assert gpu.offload_for(Policy(offload="sequential"), CUDA0, 80 * GIB) == "sequential"
    assert gpu.offload_for(Policy(offload="none"), CUDA0, 4 * GIB) == "none"
    assert gpu.offload_for(Policy(offload="model"), torch.device("mps"), None) == "none"


def test_tiling_above_the_threshold_and_smaller_suggestions() -> None:
    assert gpu.tiling_for(Policy(), 1536, 1024) and not gpu.tiling_for(Policy(), 1024, 1024)
    assert not gpu.tiling_for(Policy(vae_tiling_above=0), 4096, 4096)
    assert gpu.smaller_request(JobSpec(prompt="x", width=1024, height=1024, count=4)) == "1 image at a time or 768x768"
    assert gpu.smaller_request(JobSpec(prompt="x", width=64, height=64)) == "a smaller request"


class FakeCard:
    """Records what `place` asks of a CUDA card that this machine does not have."""

    def __init__(self, pipe: Any) -> None:
        self.calls: list[tuple[str, Any]] = []
        pipe.to = lambda *a, **k: self.calls.append(("to", a[0] if a else k.get("device"))) or pipe
        pipe.enable_model_cpu_offload = lambda device=None: self.calls.append(("model_offload", device))
        pipe.enable_sequential_cpu_offload = lambda device=None: self.calls.append(("sequential_offload", device))


def tiny_pipe(tiny_dir: Path) -> Any:
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(tiny_dir)


def test_place_on_a_big_card_channels_last_compile_slicing(tiny_dir: Path) -> None:
    pipe = tiny_pipe(tiny_dir)
    card = FakeCard(pipe)
    compiled: list[tuple[torch.nn.Module, str]] = []
    placer = gpu.Placer(
        Policy(device="cuda:0", compile=True, compile_mode="max-autotune"),
        data_dir=tiny_dir,
        total_memory=lambda d: 80 * GIB,
        compiler=lambda module, mode: compiled.append((module, mode)),
    )
    placer.place("tiny", pipe, families.get("sd15"), CUDA0)
    assert card.calls == [("to", CUDA0)]
    assert compiled == [(pipe.unet, "max-autotune")]
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert pipe.vae.use_slicing
    assert placer.applied["tiny"] | {"dtype": ""} == {
        "device": "cuda:0",
        "family": "sd15",
        "attention": "sdpa",
        "channels_last": True,
        "vae_slicing": True,
        "offload": "none",
        "compiled": "max-autotune",
        "dtype": "",
    }


def test_place_on_a_small_card_offloads_and_does_not_compile(tiny_dir: Path) -> None:
    pipe = tiny_pipe(tiny_dir)
    card = FakeCard(pipe)
    compiled: list[Any] = []
    placer = gpu.Placer(
        Policy(device="cuda:1", compile=True, sdpa=False, channels_last=False),
        data_dir=tiny_dir,
        total_memory=lambda d: 6 * GIB,
        compiler=lambda module, mode: compiled.append(module),
    )
    placer.place("tiny", pipe, families.get("sd15"), CUDA1)
    assert card.calls == [("model_offload", CUDA1)] and compiled == []
    assert placer.applied["tiny"]["attention"] == "classic"
    assert type(next(iter(pipe.unet.attn_processors.values()))).__name__ == "AttnProcessor"
    assert not pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)


def test_on_the_cpu_nothing_cuda_only_is_applied(tiny_dir: Path) -> None:
    placer = gpu.Placer(Policy(device="cpu"), data_dir=tiny_dir)
    pipe = placer.place("tiny", tiny_pipe(tiny_dir), families.get("sd15"), CPU)
    assert placer.applied["tiny"]["offload"] == "none" and "channels_last" not in placer.applied["tiny"]
    assert pipe.device == CPU


def test_compile_warms_up_at_start_not_on_a_members_job(
    conn, redis_url: str, data_dir: Path, tiny_dir: Path, monkeypatch
) -> None:
    compiled: list[str] = []
    monkeypatch.setattr(gpu, "_compile", lambda module, mode: compiled.append(type(module).__name__))
    settings = make_settings(redis_url, data_dir, compile=True, worker_metrics_port=0, registry_file=None)
    settings = settings.model_copy(update={"registry_file": _tiny_default(data_dir)})
    ctx = WorkerContext.create(settings, conn, name="compiling-worker")
    calls: list[int] = []
    startup.prepare(ctx, serve_metrics=False)
    resident, _ = ctx.pipelines.get(ctx.registry.get("tiny"))
    assert compiled == ["UNet2DConditionModel"] and ctx.pipelines.loads == 1
    # The warm-up already ran the model once; a member's job neither loads nor compiles.
    resident.pipe.unet.register_forward_hook(lambda *a: calls.append(1))
    job = queue.enqueue(conn, JobSpec(prompt="a red circle", steps=2, seed=1), settings)
    run_burst(ctx)
    result = queue.fetch_result(conn, job.id)
    assert result is not None and result.timings.loaded is False
    assert compiled == ["UNet2DConditionModel"] and calls  # ran, without compiling again
    info = conn.hgetall(keys.worker_info("compiling-worker"))
    assert info[b"compile"] == b"true" and b"tiny" in info[b"models"]


def _tiny_default(data_dir: Path) -> Path:
    file = data_dir / "tiny-default.toml"
    file.write_text(
        'default = "tiny"\n[models.tiny]\nsource = "tiny"\nfamily = "sd15"\nwidth = 32\nheight = 32\nsteps = 2\n'
        'guidance = 4.0\nsampler = "euler"\nnsfw = "allow"\n'
    )
    return file


def test_out_of_memory_is_a_refusal_with_a_smaller_size_and_the_worker_goes_on(
    conn, settings, ctx: WorkerContext, monkeypatch
) -> None:
    resident, _ = ctx.pipelines.get(ctx.registry.get("tiny"))
    unet = resident.pipe.unet
    real_forward = unet.forward

    def forward(sample: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if sample.shape[-1] > 32:  # what a card too small for 64x64 would do
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_forward(sample, *args, **kwargs)

    monkeypatch.setattr(unet, "forward", forward)
    big = queue.enqueue(
        conn, JobSpec(prompt="x", model="tiny", width=96, height=64, count=2, steps=2, seed=1), settings
    )
    small = queue.enqueue(conn, JobSpec(prompt="x", model="tiny", steps=2, seed=1), settings)
    run_burst(ctx)
    with pytest.raises(queue.JobFailed) as failure:
        queue.wait(conn, big.id, timeout=5)
    assert failure.value.error == (
        "that did not fit in the GPU's memory at 96x64 with 2 images; try 1 image at a time or 72x64"
    )
    assert conn.hget(keys.job(big.id), "attempts") == b"1"  # refused, not retried
    assert queue.wait(conn, small.id, timeout=5).seeds == [1]  # same worker, next job


def test_vae_tiling_follows_the_size_of_each_job(conn, redis_url: str, data_dir: Path, tiny_dir: Path) -> None:
    settings = make_settings(redis_url, data_dir, vae_tiling_above=32 * 32)
    ctx = WorkerContext.create(settings, conn, name="tiling-worker")
    resident, _ = ctx.pipelines.get(ctx.registry.get("tiny"))
    for size, tiled in ((64, True), (32, False)):
        job = queue.enqueue(conn, JobSpec(prompt="x", model="tiny", width=size, height=size, steps=2, seed=1), settings)
        run_burst(ctx)
        assert queue.wait(conn, job.id, timeout=10).native_width == size
        assert resident.pipe.vae.use_tiling is tiled


def test_one_worker_per_gpu_from_the_command_line(redis_url: str, data_dir: Path, monkeypatch) -> None:
    """`imagine worker --device cuda:1 --metrics-port 9102` runs a worker with those settings (no card needed)."""
    from imagine import cli
    from worker import worker as imagine_worker

    seen: list[Any] = []
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(data_dir))
    monkeypatch.setattr(imagine_worker, "run", lambda settings, conn, **kwargs: seen.append(settings))
    assert cli.main(["worker", "--device", "cuda:1", "--metrics-port", "9102", "--burst"]) == 0
    assert seen[0].device == "cuda:1" and seen[0].worker_metrics_port == 9102
    assert cli.main(["worker", "--burst"]) == 0
    assert seen[1].device == "auto" and seen[1].worker_metrics_port == 9101  # the settings' own, untouched
