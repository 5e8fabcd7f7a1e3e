"""Every Redis key and queue name the project uses, in one place, each with its TTL.

All names start with `imagine:`, so the project can share a Redis with others and `SCAN imagine:*` shows all of
its state. RQ's own keys (`rq:*`) are RQ's business; our queues are RQ queues named here.
"""

from __future__ import annotations

from imagine.contract import JOB_ID

PREFIX = "imagine:"

#: The RQ queue for image jobs (RQ stores it as `rq:queue:imagine:image`).
IMAGE_QUEUE = f"{PREFIX}image"
#: Dotted name of the job function; enqueued by name so the bot never imports torch.
GENERATE_FUNC = "worker.jobs.generate"

#: Hash of ModelInfo JSON by model name, written by every worker at start-up. No TTL (small, rewritten often).
MODELS = f"{PREFIX}models"

#: Hash of job counts across all workers, field `<outcome>|<kind>|<model>` (outcome: done, failed, retrying) and
#: `cause|<cause>` for failed attempts: what the bot's /metrics reports for the whole deployment. No TTL.
STATS = f"{PREFIX}stats"
#: List of the latest failures (JSON: job id, model, kind, cause, error, worker, ts), newest first, capped.
FAILURES = f"{PREFIX}failures"
FAILURES_KEPT = 50
#: TTL of a worker's description (`worker_info`), refreshed at start-up and after every job.
WORKER_INFO_TTL = 24 * 3600

#: Default TTL of a job record; `Settings.record_ttl` overrides it. Long, so buttons work days later.
JOB_TTL = 30 * 24 * 3600
#: TTL of a job's progress stream, refreshed on every event.
PROGRESS_TTL = 3600
#: Length cap of a progress stream (approximate trimming).
PROGRESS_MAXLEN = 256
#: TTL of a delivery marker: longer than any retry of the same job can come.
DELIVERED_TTL = 7 * 24 * 3600
#: Sorted set of job ids whose result (or failure notice) Discord would not take yet; score: when to try again.
OUTBOX = f"{PREFIX}outbox"
#: How long a message that cannot be posted is kept and retried before it is given up (and logged as lost).
OUTBOX_TTL = 24 * 3600


def check_job_id(job_id: str) -> str:
    """Refuse ids that could escape their key (they are chosen by the bot, and end up in key names)."""
    if not JOB_ID.match(job_id):
        raise ValueError(f"bad job id {job_id!r}")
    return job_id


def job(job_id: str) -> str:
    """Hash: `spec` (JSON, no token), `status`, `attempts`, `resolved`, `seeds`, `model`, `error`; later message ids."""
    return f"{PREFIX}job:{check_job_id(job_id)}"


def progress(job_id: str) -> str:
    """Stream of progress events (field `event`: JSON of a contract event) for one job."""
    return f"{PREFIX}progress:{check_job_id(job_id)}"


def delivered(job_id: str) -> str:
    """JSON lease, then marker, of a job's one post (see `worker.idempotency`): a retried job never posts twice."""
    return f"{PREFIX}delivered:{check_job_id(job_id)}"


def outbox(job_id: str) -> str:
    """String: JSON of a message waiting in the outbox (`worker.outbox.Parcel`, files in base64). TTL: OUTBOX_TTL."""
    return f"{PREFIX}outbox:{check_job_id(job_id)}"


def token(job_id: str) -> str:
    """String: the interaction token of a job, for as long as it lives (`imagine.tokens`; at most 15 minutes)."""
    return f"{PREFIX}token:{check_job_id(job_id)}"


def reaper_lock(queue_name: str) -> str:
    """String set with NX and a PX of the maintenance interval by the worker that sweeps `queue_name` next."""
    return f"{PREFIX}reaper:{queue_name}"


def message(message_id: int) -> str:
    """String: the job a Discord message shows (status or result), for reactions and buttons. TTL: the record's."""
    return f"{PREFIX}message:{int(message_id)}"


def images(job_id: str) -> str:
    """Hash of a result's PNGs by 0-based index, for U buttons and variations. TTL: `Settings.image_ttl`."""
    return f"{PREFIX}images:{check_job_id(job_id)}"


def edit_gate(job_id: str) -> str:
    """Set with NX and a PX of `Settings.progress_interval` by whoever edits a job's status message next."""
    return f"{PREFIX}edit-gate:{check_job_id(job_id)}"


def guild(guild_id: int, name: str) -> str:
    """Per-server state (`settings`, `limits`, counters)."""
    return f"{PREFIX}guild:{int(guild_id)}:{name}"


def member(guild_id: int, user_id: int, name: str) -> str:
    """Per-member state within a server (defaults, counters)."""
    return f"{PREFIX}member:{int(guild_id)}:{int(user_id)}:{name}"


def worker_info(name: str) -> str:
    """Hash describing a live worker for `imagine status`: device, dtype, resident models, metrics port."""
    return f"{PREFIX}worker:{name}"


# --- Moderation and fair order (issue 5). Per-server state lives under `guild(...)`, per-member under `member(...)`:
# guild: `limits` (hash of overrides), `blocked`, `banned`, `channels`, `nsfw` (sets), `modrole` (string), `modlog`
# (list, newest first, capped), `active` (sorted set of its queued-or-running jobs, scored by admission time);
# member: `active` (the same for one member), `hourly` (sorted set of jobs admitted in the last hour).

#: Set of server ids whose queue is paused: their waiting jobs are parked, and workers skip any they pop.
PAUSED = f"{PREFIX}paused"
#: Sorted set of servers the bot has left, by when: their data is purged after a grace (`imagine.retention`).
LEFT_GUILDS = f"{PREFIX}guilds:left"
#: Set of servers the bot was last seen in, so a leave while it was offline is noticed at its next start.
IN_GUILDS = f"{PREFIX}guilds:in"
#: Set of the RQ queue names the fair scheduler orders (pause and resume walk them).
FAIR_QUEUES = f"{PREFIX}fair:queues"
#: How many moderator actions a server's log keeps.
MODLOG_SIZE = 1000


def fair(queue_name: str, name: str) -> str:
    """Fair-order state of one queue (`imagine.fair_lua` lists its keys); `fair(queue, "")` is their prefix."""
    return f"{PREFIX}fair:{queue_name}:{name}"


def synced_commands(application_id: int) -> str:
    """String: hash of the global slash commands last synced for this Discord application (bot/sync.py). No TTL."""
    return f"{PREFIX}commands:synced:{int(application_id)}"
