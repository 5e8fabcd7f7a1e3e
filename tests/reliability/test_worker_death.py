"""Workers killed with SIGKILL (real processes, `os.kill`): mid-sampling, mid-post, and on every attempt.

The bound checked here is the design's: a dead worker's job is back on the queue within `heartbeat_ttl +
maintenance_interval` seconds of its death (4 + 1 here; 30 + 15 by default), retried by another worker, and its
result reaches Discord exactly once; a job whose every attempt dies tells its member so, once.
"""

from __future__ import annotations

import json

import pytest

from imagine import keys
from tests.reliability.stack import DETECTION_BOUND_S, JOB_RETRIES, Stack, job_events
from tests.support.state import RestCall

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

#: Slack on top of the bound for a loaded 2-core machine (a sweep, a Redis round trip, process scheduling).
SLACK_S = 2.0


def starts(stack: Stack, job_id: str) -> list[dict]:
    return [e for e in job_events(stack.conn, job_id) if e["type"] == "started"]


def a_result(call: RestCall) -> bool:
    """A fault filter: a call that posts a result (not a status edit; tests here run one job at a time)."""
    return "imagine:r:" in json.dumps(call.json or {})


async def running_on(stack: Stack, job_id: str, attempt: int):  # type: ignore[no-untyped-def]
    """The worker process running `attempt` of the job, once it is sampling."""
    await stack.poll(lambda: len(starts(stack, job_id)) >= attempt, f"attempt {attempt} to start", 60)
    return await stack.poll(lambda: stack.worker_of(job_id), f"the worker of attempt {attempt}", 30)


async def test_a_worker_killed_mid_job_is_noticed_within_the_bound_and_retried_elsewhere(clean: Stack) -> None:
    stack = clean
    channel_id, member = await stack.channel()
    _, job_id = await stack.ask(channel_id, member, "killed while sampling --steps 60 --seed 5")
    victim = await running_on(stack, job_id, 1)
    await stack.poll(lambda: any(e["type"] == "progress" for e in job_events(stack.conn, job_id)), "sampling")
    killed_at = stack.kill(victim)
    stack.add_worker()  # what a supervisor does; the other worker takes the job meanwhile

    await stack.result(channel_id, job_id)
    attempts = starts(stack, job_id)
    assert [a["attempt"] for a in attempts] == [1, 2]
    assert attempts[1]["worker"] != attempts[0]["worker"], "retried by the worker that died?"
    requeued = float(stack.conn.hget(keys.job(job_id), "abandoned_at") or 0) - killed_at
    restarted = attempts[1]["ts"] - killed_at
    print(f"\nworker death -> job requeued {requeued:.1f} s, -> retry started {restarted:.1f} s")
    assert 0 < requeued <= DETECTION_BOUND_S + SLACK_S
    assert restarted <= DETECTION_BOUND_S + SLACK_S + 1.0
    assert len(stack.results(channel_id, job_id)) == 1
    await stack.posted(job_id)  # marked right after Discord took it
    await stack.workers_ready(2)


async def test_a_worker_killed_while_posting_its_result_gets_it_posted_exactly_once(clean: Stack) -> None:
    stack = clean
    channel_id, member = await stack.channel()
    # The result's post is held by Discord for 6 s: the worker is killed while it waits for the answer.
    fault = stack.fake.fail_next("/webhooks/*", method="PATCH", status=None, delay=6.0, when=a_result)
    _, job_id = await stack.ask(channel_id, member, "killed while posting --steps 2 --seed 6")
    victim = await running_on(stack, job_id, 1)
    await stack.wait(lambda: fault.hits, "the result's post to reach Discord", 60)
    stack.kill(victim)
    stack.add_worker()

    await stack.result(channel_id, job_id)
    state = await stack.posted(job_id)
    assert len(starts(stack, job_id)) == 2
    assert state.get("taken_over") is True, state  # the dead poster's lease ran out and the retry took it over
    # Let the held request land too: the message is edited twice with the same result, never duplicated.
    await stack.wait(lambda: all(c.status for c in stack.fake.calls_to("PATCH")), "the held request", 15)
    assert len(stack.results(channel_id, job_id)) == 1
    assert [m for m in stack.fake.messages(channel_id) if m.attachments] == stack.results(channel_id, job_id)
    print(f"\nlease after the takeover: {state}")
    await stack.workers_ready(2)


async def test_a_job_whose_every_attempt_dies_tells_the_member_once(clean: Stack) -> None:
    stack = clean
    channel_id, member = await stack.channel()
    inter, job_id = await stack.ask(channel_id, member, "dies every time --steps 60 --seed 7")
    for attempt in range(1, JOB_RETRIES + 2):
        victim = await running_on(stack, job_id, attempt)
        stack.kill(victim)
        stack.add_worker()

    await stack.wait(
        lambda: "❌" in stack.fake.message(inter.original_message_id or 0).content, "the failure notice", 90
    )
    status = stack.fake.message(inter.original_message_id or 0)
    assert "stopped unexpectedly" in status.content and f"{JOB_RETRIES + 1} tries" in status.content
    assert status.mention_user_ids == [] and not status.mention_everyone
    assert stack.conn.hget(keys.job(job_id), "status") == b"failed"
    assert stack.results(channel_id, job_id) == []
    failures = [e for e in [*status.edits, {"content": status.content}] if "❌" in e["content"]]
    assert len(failures) == 1, failures  # told once
    assert [m.id for m in stack.fake.messages(channel_id) if not m.ephemeral] == [status.id]
    await stack.workers_ready(2)
