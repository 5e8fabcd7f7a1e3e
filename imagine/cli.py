"""The `imagine` command: generate, worker, bot, up (Redis + workers + bot), models, status.

`imagine generate` walks the bot's own path: it validates a JobSpec, enqueues it through Redis by dotted name,
follows the worker's progress events and writes the result. With no REDIS_URL it starts an embedded Redis and a
worker in this process, so it works on a fresh machine with nothing running. Heavy packages (torch, diffusers) are
imported only by the subcommands that run a worker; on an install without the `worker` extra (the bot's core) those
subcommands say in one line what to install.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imagine import __version__, keys, logs
from imagine.contract import SAMPLERS, JobResult, JobSpec, SpecError
from imagine.settings import Settings, redact_url

log = logging.getLogger(__name__)

#: Import names of the `worker` extra (pyproject.toml) that running a worker or loading a model needs.
WORKER_EXTRA_MODULES = (
    "torch",
    "diffusers",
    "transformers",
    "safetensors",
    "numpy",
    "av",
    "huggingface_hub",
    "requests",
)
WORKER_EXTRA_INSTALL = "pip install 'imagine-bot[worker]'"


def missing_worker_extra(who: str) -> str | None:
    """One line saying what to install when the `worker` extra is missing (a core-only install), else None."""
    missing = [name for name in WORKER_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return f"{who} needs the 'worker' extra ({', '.join(missing)} not installed): {WORKER_EXTRA_INSTALL}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    level = (
        logging.DEBUG
        if args.verbose > 1
        else logging.INFO
        if args.verbose or args.command in ("worker", "bot", "up")
        else logging.WARNING
    )
    settings = Settings()
    logs.configure(level, settings.log_format)
    handler = {
        "generate": _generate,
        "worker": _worker,
        "models": _models,
        "status": _status,
        "up": _up,
        "bot": _bot,
    }[args.command]
    try:
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagine", description="Prompts in, images out, through Redis.")
    parser.add_argument("--version", action="version", version=f"imagine-bot {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="make images from a prompt, through the queue, like the bot does")
    gen.add_argument("prompt")
    gen.add_argument("--negative", default="", help="what the image should not show")
    gen.add_argument("--seed", type=int, help="seed of the first image (the others get seed+1, …); random if unset")
    gen.add_argument("--steps", type=int, help="denoising steps (model default if unset)")
    gen.add_argument("--guidance", type=float, help="classifier-free guidance scale (model default if unset)")
    gen.add_argument("--size", type=_size, help="WxH, e.g. 512x512 (model default if unset)")
    gen.add_argument("--count", type=int, default=1, help="images, 1-4 (4 also writes a 2x2 grid)")
    gen.add_argument("--model", help="registry name (the registry's default if unset)")
    gen.add_argument("--sampler", choices=SAMPLERS, help="sampler (model default if unset)")
    gen.add_argument("--clip", action="store_true", help="a clip (MP4) from a clip model instead of images")
    gen.add_argument("--frames", type=int, help="clips: frames (model default if unset)")
    gen.add_argument("--fps", type=int, help="clips: frames per second (model default if unset)")
    gen.add_argument("--gif", action="store_true", help="clips: a GIF instead of an MP4")
    gen.add_argument("--out", type=Path, help="output PNG (default out/<job id>.png); singles get -1, -2, …")
    gen.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the result")
    gen.add_argument(
        "--local-worker",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run a worker in this process (default: only when this process started the embedded Redis)",
    )

    wrk = sub.add_parser("worker", help="run a worker that keeps its pipelines loaded")
    wrk.add_argument("--queues", default=keys.IMAGE_QUEUE, help="comma-separated queue names")
    wrk.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    wrk.add_argument("--max-jobs", type=int, help="quit after this many jobs")
    wrk.add_argument("--preload", action="append", default=[], help="load this model before taking jobs")
    wrk.add_argument("--device", help="this worker's device, e.g. cuda:1 (one worker per GPU); default IMAGINE_DEVICE")
    wrk.add_argument("--metrics-port", type=int, help="port of this worker's /metrics (0: off); one per worker")

    mdl = sub.add_parser("models", help="the model registry")
    msub = mdl.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="list models, their defaults and whether their weights are here")
    msub.add_parser("check", help="check every model's configs, family, files and LoRAs without loading weights")
    tiny = msub.add_parser("build-tiny", help="build the tiny random test pipeline")
    tiny.add_argument("--out", type=Path, help="folder (default: <data dir>/models/tiny)")

    sub.add_parser("status", help="queue length, workers and advertised models")
    bot = sub.add_parser("bot", help="run the Discord bot")
    bot.add_argument(
        "--sync-global", action="store_true", help="sync global slash commands at start, even unchanged ones"
    )
    up = sub.add_parser("up", help="Redis (embedded when REDIS_URL is unset), workers and the bot; Ctrl-C stops all")
    up.add_argument("--workers", type=int, help="worker processes, one per GPU (default: one per --devices, or 1)")
    up.add_argument(
        "--devices",
        help="one device per worker, e.g. cuda:0,cuda:1 or cpu,cpu (default: worker i on cuda:i when CUDA is here)",
    )
    up.add_argument("--sync-global", action="store_true", help="passed on to the bot")
    up.add_argument("--preload", action="append", default=[], help="passed on to each worker")
    return parser


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH, e.g. 512x512") from None


# --- generate ---


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from imagine import queue
    from imagine import redis as imagine_redis

    fields: dict[str, Any] = {
        "prompt": args.prompt,
        "negative_prompt": args.negative,
        "seed": args.seed,
        "steps": args.steps,
        "guidance": args.guidance,
        "count": args.count,
        "model": args.model,
        "sampler": args.sampler,
        "kind": "clip" if args.clip or args.gif or args.frames or args.fps else None,
        "frames": args.frames,
        "fps": args.fps,
        "clip_format": "gif" if args.gif else None,
    }
    if args.size:
        fields["width"], fields["height"] = args.size
    try:
        spec = JobSpec.parse({k: v for k, v in fields.items() if v is not None}, settings.limits())
    except SpecError as exc:
        print(f"imagine: invalid request: {exc}", file=sys.stderr)
        return 2

    with imagine_redis.connect(settings) as redis_conn:
        conn = redis_conn.conn
        local = args.local_worker if args.local_worker is not None else redis_conn.owns_server
        if local and (missing := missing_worker_extra("imagine generate: the local worker")):
            print(missing, file=sys.stderr)  # before enqueueing: nothing would take the job
            return 2
        job = queue.enqueue(conn, spec, settings)
        seed = job.args[0]["seed"]
        print(f"job {job.id}: seed {seed}", file=sys.stderr)
        if not local and not _workers_listening(conn):
            print("imagine: no worker is listening yet; start one with `imagine worker`", file=sys.stderr)
        follower = _Follower(conn, job.id, args.timeout)
        follower.start()
        if local:
            from worker import worker as imagine_worker

            imagine_worker.run(settings, conn, burst=True, logging_level="WARNING")
        follower.join()
    if follower.error is not None:
        print(f"imagine: {follower.error}", file=sys.stderr)
        return 1
    assert follower.result is not None
    for path in _write(follower.result, args.out or Path("out") / f"{job.id}.png"):
        print(path)
    return 0


def _workers_listening(conn: Any) -> bool:
    from rq import Worker

    return any(keys.IMAGE_QUEUE in w.queue_names() for w in Worker.all(connection=conn))


class _Follower(threading.Thread):
    """Follows a job's events with a progress bar, in a thread so a local worker can run in the main thread."""

    def __init__(self, conn: Any, job_id: str, timeout: float) -> None:
        super().__init__(name=f"follow-{job_id}", daemon=True)
        self.conn = conn
        self.job_id = job_id
        self.timeout = timeout
        self.result: JobResult | None = None
        self.error: str | None = None

    def run(self) -> None:
        from tqdm import tqdm

        from imagine import queue
        from imagine.contract import Failed, Progress, Started

        with tqdm(total=1, unit="step", desc="queued", leave=False, file=sys.stderr) as bar:

            def on_event(event: object) -> None:
                if isinstance(event, Started):
                    bar.set_description("loading" if event.attempt == 1 else f"attempt {event.attempt}", refresh=False)
                elif isinstance(event, Progress):
                    bar.set_description("generating", refresh=False)
                    bar.total = event.total
                    bar.n = event.step
                    bar.refresh()
                elif isinstance(event, Failed) and event.retrying:
                    bar.write(f"attempt failed ({event.error}); retrying")

            try:
                self.result = queue.wait(self.conn, self.job_id, timeout=self.timeout, on_event=on_event)
            except (queue.JobFailed, TimeoutError) as exc:
                self.error = getattr(exc, "error", None) or str(exc)


def _write(result: JobResult, out: Path) -> list[Path]:
    """The grid (when there are several images) at `out`, singles beside it; one image goes to `out` itself."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if result.clip is not None:  # a clip: its MP4 or GIF, the suffix following the format
        path = out.with_suffix(f".{result.clip.format}")
        path.write_bytes(result.clip.data_bytes())
        return [path]
    if len(result.images) == 1:
        out.write_bytes(result.images[0].png_bytes())
        return [out]
    written = []
    if result.grid is not None:
        out.write_bytes(result.grid.png_bytes())
        written.append(out)
    for i, image in enumerate(result.images, start=1):
        path = out.with_name(f"{out.stem}-{i}{out.suffix}")
        path.write_bytes(image.png_bytes())
        written.append(path)
    return written


# --- worker, models, status, up ---


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    if missing := missing_worker_extra("imagine worker: the worker"):
        print(missing, file=sys.stderr)
        return 2
    from imagine import redis as imagine_redis
    from models.check import RegistryInvalid
    from worker import worker as imagine_worker

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    overrides = {"device": args.device, "worker_metrics_port": args.metrics_port}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    with imagine_redis.connect(settings) as redis_conn:
        if redis_conn.owns_server:
            embedded = redis_conn.embedded
            assert embedded is not None
            print(
                f"embedded Redis at {redact_url(redis_conn.url)} (its password is in {embedded.password_file}): "
                "point other processes at it with REDIS_URL",
                file=sys.stderr,
            )
        try:
            imagine_worker.run(
                settings, redis_conn.conn, queues=queues, burst=args.burst, preload=args.preload, max_jobs=args.max_jobs
            )
        except RegistryInvalid as invalid:
            print(f"imagine worker: the model registry has errors; not starting.\n{invalid.table}", file=sys.stderr)
            return 2
    return 0


def _models(args: argparse.Namespace, settings: Settings) -> int:
    from models import registry

    if args.models_command != "list" and (missing := missing_worker_extra(f"imagine models {args.models_command}")):
        print(missing, file=sys.stderr)
        return 2
    if args.models_command == "check":
        from models import check

        rows = check.run(settings.registry_file, settings.data_dir)
        print(check.table(rows))
        return 1 if any(row.status == "error" for row in rows) else 0
    reg = registry.load(settings.registry_file)
    if args.models_command == "build-tiny":
        from models import tiny

        print(tiny.build(args.out or Path(reg.get("tiny").location(settings.data_dir))))
        return 0
    for entry in reg.models.values():
        mark = "*" if entry.name == reg.default else " "
        here = "ready" if entry.available(settings.data_dir) else f"missing, falls back to {entry.fallback}"
        print(
            f"{mark} {entry.name:10} {entry.width}x{entry.height} {entry.steps} steps, guidance {entry.guidance:g}, "
            f"{entry.sampler}, display x{entry.display_scale} [{entry.source}: {here}]"
        )
        if entry.description:
            print(f"  {'':10} {entry.description}")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from imagine import redis as imagine_redis
    from imagine import status
    from imagine.contract import ModelInfo

    with imagine_redis.connect(settings) as redis_conn:
        conn = redis_conn.conn
        print(status.render(conn))
        for raw in conn.hvals(keys.MODELS):
            info = ModelInfo.model_validate_json(raw)
            print(f"model {info.name}: {info.defaults.width}x{info.defaults.height}, available={info.available}")
    return 0


def _bot(args: argparse.Namespace, settings: Settings) -> int:
    from bot import launcher

    return launcher.run(settings, sync_global=args.sync_global)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from imagine import devices
    from imagine.supervisor import Supervisor

    if missing := missing_worker_extra("imagine up: the workers"):
        print(missing, file=sys.stderr)
        return 2
    try:
        names = devices.parse(args.devices) if args.devices is not None else None
        cuda_count = _cuda_count() if devices.needs_cuda_count(names, settings.device) else 0
        plan = devices.plan(
            args.workers,
            names,
            default_device=settings.device,
            cuda_count=cuda_count,
            metrics_port=settings.worker_metrics_port,
        )
    except devices.DevicesError as exc:
        print(f"imagine up: {exc}", file=sys.stderr)
        return 2
    for warning in plan.warnings:
        log.warning("%s", warning)
    for slot in plan.slots:
        port = f"metrics :{slot.metrics_port}" if slot.metrics_port else "no metrics"
        print(f"imagine up: worker-{slot.index + 1} on {slot.device}, {port}", file=sys.stderr)
    bot_args = ["--sync-global"] if args.sync_global else []
    worker_args = [a for name in args.preload for a in ("--preload", name)]
    return Supervisor(settings, workers=plan.slots, bot_args=bot_args, worker_args=worker_args).run()


def _cuda_count() -> int:
    """CUDA devices this process sees (CUDA_VISIBLE_DEVICES applies); torch reads it without taking a card."""
    import torch

    return int(torch.cuda.device_count())


if __name__ == "__main__":
    sys.exit(main())
