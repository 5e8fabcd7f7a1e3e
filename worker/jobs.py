"""The job functions a worker runs, enqueued by dotted name (`worker.jobs.generate`).

`generate` is the diffusers `__call__` recipe wrapped in the job's bookkeeping: check the spec → resolve the
model's defaults → get the resident pipeline → sampler → one generator per image → denoise with progress →
encode → record and report. Its argument and return value are JSON (the contract's JobSpec and JobResult).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from rq import get_current_job

from imagine import keys, progress
from imagine.contract import Failed, Image, JobResult, JobSpec, Progress, SpecError, Started, Timings, parameters_text
from imagine.queue import new_job_id
from models import lora
from models.registry import UnknownModel
from worker import context, delivery, encoding, gpu, render, safety, variations, video
from worker.context import WorkerContext
from worker.metrics import labels_of

log = logging.getLogger(__name__)


class JobRefused(Exception):
    """A job that can never succeed as asked (bad spec, unknown model): it fails at once and is not retried."""


#: Errors whose message is shown to the member as is; anything else is reported as an internal error.
REFUSALS: tuple[type[Exception], ...] = (
    JobRefused,
    SpecError,
    UnknownModel,
    variations.SourceGone,
    gpu.OutOfMemory,
    video.EncodingError,  # a clip that fits the upload limit at no size: another attempt would not fit either
)


def generate(payload: dict[str, Any]) -> dict[str, Any]:
    """Make the images a JobSpec asks for; return a JobResult (as JSON-ready data)."""
    ctx = context.current()
    job = get_current_job()
    job_id = job.id if job is not None else new_job_id()
    record = keys.job(job_id)
    with ctx.conn.pipeline() as pipe:
        pipe.hincrby(record, "attempts", 1)
        pipe.hset(record, mapping={"status": "running", "worker": ctx.name})
        pipe.expire(record, ctx.settings.record_ttl)
        attempt = int(pipe.execute()[0])
    progress.publish(ctx.conn, Started(job_id=job_id, worker=ctx.name, attempt=attempt, ts=time.time()))
    model, kind = labels_of(payload, ctx.registry.models, ctx.registry.default)
    ctx.metrics.started(job_id, kind, job.enqueued_at if job is not None else None)
    # Delivery to Discord (a no-op for jobs without a requester): status edits, then the result or the failure.
    courier = delivery.Courier.open(ctx, job_id, payload, queue_name=job.origin if job is not None else None)
    courier.started()
    try:
        result = _run(ctx, job_id, payload, courier)
    except Exception as exc:
        refused = isinstance(exc, REFUSALS)
        if refused and job is not None:
            # The worker decides on a retry from this same Job object right after we raise.
            job.retries_left = 0
        retrying = job is not None and job.should_retry
        error = str(exc) if refused else "the worker hit an error while making this image"
        log.warning("job %s attempt %d failed: %s", job_id, attempt, exc if refused else type(exc).__name__)
        ctx.conn.hset(record, mapping={"status": "retrying" if retrying else "failed", "error": error})
        ctx.metrics.failed(ctx.conn, job_id, model, kind, exc, error=error, retrying=retrying, worker=ctx.name)
        progress.publish(ctx.conn, Failed(job_id=job_id, error=error, retrying=retrying, ts=time.time()))
        if not retrying:
            courier.fail(error)
        courier.close()
        if refused and not isinstance(exc, JobRefused):
            raise JobRefused(error) from exc
        raise
    ctx.conn.hset(
        record,
        mapping={
            "status": "done",
            "resolved": result.spec.model_dump_json(),
            "seeds": json.dumps(result.seeds),
            "model": result.spec.model or "",
        },
    )
    delivery.store_images(ctx.conn, result, ctx.settings.image_ttl)
    ctx.metrics.done(ctx.conn, job_id, result.spec.model or model, result.spec.kind)
    try:
        courier.finish(result)
    finally:
        courier.close()
    # `Done` is published by the worker once RQ has stored this return value (see ImagineWorker.perform_job).
    return result.model_dump(mode="json")


def _run(ctx: WorkerContext, job_id: str, payload: dict[str, Any], courier: Any = None) -> JobResult:
    # 1. Check the spec against this worker's limits (the payload came from Redis: trust nothing).
    spec = JobSpec.parse(payload, ctx.settings.limits())
    # 2. Resolve the model and its defaults; the model refuses what it cannot run (kind, sampler, LoRAs, limits).
    entry = ctx.registry.resolve(spec.model, ctx.settings.data_dir, spec.kind)
    spec = spec.resolved(entry.name, entry.defaults)
    if spec.init_image is not None and spec.init_image.scale > 1:
        spec = render.upscaled(spec, ctx.settings.limits())
    entry.check_spec(spec)
    if spec.seed is None:
        raise JobRefused("seed: is required (the enqueuer picks one)")
    seeds = spec.seeds()
    # 3. The resident pipeline, and a fresh sampler built from the model's own scheduler config.
    resident, loaded = ctx.pipelines.get(entry)
    if loaded:
        ctx.metrics.loaded(entry.name, resident.load_s)
    if entry.family_info is None:  # "auto": the loaded pipeline says what it is
        entry.check_spec(spec, resident.family)
    pipe = resident.pipe
    assert spec.sampler is not None and spec.steps is not None
    steps, total = spec.steps, spec.steps
    size: dict[str, Any] = {"width": spec.width, "height": spec.height}
    if spec.init_image is not None:
        # A variation: image-to-image from an earlier image, on a pipeline sharing the resident components.
        assert spec.width is not None and spec.height is not None
        strength = spec.init_image.strength
        size = {
            "image": variations.load_source(ctx.conn, spec.init_image, spec.width, spec.height),
            "strength": strength,
        }
        pipe = variations.image2image(pipe)
        steps = max(steps, math.ceil(1 / strength))
        total = variations.denoising_steps(steps, strength)
    pipe.scheduler = resident.scheduler(spec.sampler)
    lora.choose(pipe, entry, spec.loras)
    assert spec.width is not None and spec.height is not None
    gpu.set_tiling(pipe, ctx.policy, spec.width, spec.height)
    # 4. One generator per image, on the CPU so a seed gives the same noise on any device.
    generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
    reporter = _Reporter(ctx, job_id, total=total, courier=courier)
    started = time.perf_counter()
    with gpu.out_of_memory_refused(spec, ctx.device):
        asked = spec.model_copy(update={"steps": steps})
        out = render.call(pipe, resident.family, asked, generators=generators, on_step=reporter, **size)
    reporter.flush()
    pictures, filtered = out.pictures, list[int]()
    if safety.needed(entry, spec, enabled=ctx.settings.safety_checker):
        pictures, filtered = safety.screen(resident.checker, pictures)
    sampled = time.perf_counter()
    # 5. Encode: display-size PNGs that carry the parameters (native size), plus a grid for several images.
    images, sheet = _encode(pictures, spec, seeds, entry.display_scale)
    clip = video.for_job(out.frames, spec, seeds[0], entry.display_scale) if out.frames else None
    encoded = time.perf_counter()
    native_w, native_h = pictures[0].size
    return JobResult(
        job_id=job_id,
        spec=spec.without_secrets(),
        seeds=seeds,
        images=images,
        grid=sheet,
        native_width=native_w,
        native_height=native_h,
        worker=ctx.name,
        timings=Timings(
            loaded=loaded,
            load_s=resident.load_s if loaded else 0.0,
            sample_s=sampled - started,
            encode_s=encoded - sampled,
        ),
        clip=clip,
        filtered=filtered,
    )


def _encode(pictures: list[Any], spec: JobSpec, seeds: list[int], scale: int) -> tuple[list[Image], Image | None]:
    shown = [encoding.upscale(picture, scale) for picture in pictures]
    images = [
        Image.from_png(seed, pic.width, pic.height, encoding.encode_png(pic, parameters_text(spec, seed)))
        for pic, seed in zip(shown, seeds, strict=True)
    ]
    sheet = None
    if len(shown) > 1:
        pic = encoding.grid(shown)
        sheet = Image.from_png(
            seeds[0], pic.width, pic.height, encoding.encode_png(pic, parameters_text(spec, seeds[0]))
        )
    return images, sheet


class _Reporter:
    """`callback_on_step_end`: publishes step i of n, with a small decoded preview every few steps.

    Cheap enough to leave a fast sampler alone: events go to Redis in one round trip per `FLUSH_S` (and at once
    with a preview, and at the last step), and after the first preview another is decoded only when a status
    message could show it, at most one per `progress_interval` (only the courier shows previews).
    """

    #: Seconds progress events may wait to be published together. What reads them as they come is a progress bar
    #: (`imagine generate`; the courier is told every step in-process), and twice a second is plenty for it; at
    #: 0.1 s the shipped model's job made a round trip every other step, 40% of what its callbacks cost.
    FLUSH_S = 0.5

    def __init__(
        self,
        ctx: WorkerContext,
        job_id: str,
        total: int,
        courier: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.total = total
        self.every = ctx.settings.preview_every
        self.courier = courier
        self.clock = clock
        self.pending: list[Progress] = []
        # The first steps wait too (`Started` already said the job runs): a round trip saved on every job.
        self.flushed = clock()
        self.previewed = float("-inf")

    def __call__(self, pipe: Any, step_index: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        step = min(step_index + 1, self.total)
        now = self.clock()
        preview = None
        due = self.every and step % self.every == 0 and step < self.total
        if due and now - self.previewed >= self.ctx.settings.progress_interval:
            preview = self._preview(pipe, kwargs["latents"])
            self.previewed = now
        self.pending.append(
            Progress(job_id=self.job_id, step=step, total=self.total, preview_png=preview, ts=time.time())
        )
        if preview is not None or step >= self.total or now - self.flushed >= self.FLUSH_S:
            self.flush()
            self.flushed = now
        if self.courier is not None:
            self.courier.progress(step, self.total, preview)
        return kwargs

    def flush(self) -> None:
        """Publish the events not yet in Redis (the sampler's end calls it too, in case it stopped short)."""
        events, self.pending = self.pending, []
        progress.publish_many(self.ctx.conn, events)

    def _preview(self, pipe: Any, latents: torch.Tensor) -> str | None:
        """Decode the first image's current latents with the model's VAE (it does not touch the sampler's state)."""
        try:
            vae = pipe.vae
            if latents.ndim == 5:  # a clip's (batch, channels, frames, height, width): show its first frame
                latents = latents[:, :, 0]
            decoded = vae.decode(latents[:1].to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
            processor = getattr(pipe, "image_processor", None) or pipe.video_processor  # clip pipelines: video
            picture = processor.postprocess(decoded, output_type="pil")[0]
        except Exception:  # a preview is a nicety: never fail a job for it
            log.debug("preview failed for job %s", self.job_id, exc_info=True)
            return None
        return base64.b64encode(encoding.preview(picture, self.ctx.settings.preview_size)).decode("ascii")
