"""imagine/devices.py: which device and metrics port each worker of `imagine up` gets (no GPU needed)."""

from __future__ import annotations

import pytest

from imagine import devices
from imagine.devices import DevicesError


def slots(plan: devices.Plan) -> list[tuple[str, int]]:
    return [(slot.device, slot.metrics_port) for slot in plan.slots]


def test_n_workers_on_n_cards_get_one_card_each_and_their_own_port() -> None:
    plan = devices.plan(4, None, default_device="auto", cuda_count=4, metrics_port=9101)
    assert slots(plan) == [("cuda:0", 9101), ("cuda:1", 9102), ("cuda:2", 9103), ("cuda:3", 9104)]
    assert plan.warnings == []
    plan = devices.plan(2, None, default_device="cuda", cuda_count=8, metrics_port=9101)
    assert slots(plan) == [("cuda:0", 9101), ("cuda:1", 9102)]


def test_more_workers_than_cards_take_turns_and_say_so() -> None:
    plan = devices.plan(3, None, default_device="auto", cuda_count=2, metrics_port=9101)
    assert [slot.device for slot in plan.slots] == ["cuda:0", "cuda:1", "cuda:0"]
    assert len(plan.warnings) == 1 and "3 workers on 2 CUDA device(s)" in plan.warnings[0]


def test_without_cuda_or_with_a_fixed_device_every_worker_uses_the_setting() -> None:
    assert slots(devices.plan(2, None, default_device="auto", cuda_count=0, metrics_port=9101)) == [
        ("auto", 9101),
        ("auto", 9102),
    ]
    plan = devices.plan(2, None, default_device="cuda:1", cuda_count=4, metrics_port=9101)
    assert [slot.device for slot in plan.slots] == ["cuda:1", "cuda:1"]
    assert "several workers share cuda:1" in plan.warnings[0]
    assert devices.plan(1, None, default_device="cpu", cuda_count=0, metrics_port=9101).warnings == []


def test_devices_name_one_device_per_worker() -> None:
    assert devices.parse("cuda:0, cuda:1") == ["cuda:0", "cuda:1"]
    plan = devices.plan(None, devices.parse("cpu,cpu"), default_device="auto", cuda_count=0, metrics_port=9101)
    assert slots(plan) == [("cpu", 9101), ("cpu", 9102)]
    plan = devices.plan(2, ["cuda:1", "cuda:0"], default_device="cpu", cuda_count=2, metrics_port=0)
    assert slots(plan) == [("cuda:1", 0), ("cuda:0", 0)]  # port 0: no worker serves /metrics


@pytest.mark.parametrize(
    ("workers", "text", "cuda_count", "message"),
    [
        (3, "cuda:0,cuda:1", 2, "names 2 device(s) for 3 worker(s)"),
        (None, "cuda:0,cuda:2", 2, "cuda:2 does not exist here (only 2 CUDA device(s) are visible)"),
        (None, "cuda", 0, "no CUDA device is visible"),
        (None, "gpu0", 0, "'gpu0' is not a device"),
        (None, "cpu:1", 0, "'cpu:1' is not a device"),
        (None, "cpu,,cpu", 0, "one device per worker"),
        (0, None, 0, "at least 1"),
    ],
)
def test_bad_plans_are_refused_in_one_line(
    workers: int | None, text: str | None, cuda_count: int, message: str
) -> None:
    with pytest.raises(DevicesError, match=message.replace("(", r"\(").replace(")", r"\)")):
        names = devices.parse(text) if text is not None else None
        devices.plan(workers, names, default_device="auto", cuda_count=cuda_count, metrics_port=9101)


def test_cuda_is_counted_only_when_a_plan_may_use_it() -> None:
    assert devices.needs_cuda_count(None, "auto") and devices.needs_cuda_count(["cpu", "cuda:1"], "cpu")
    assert not devices.needs_cuda_count(["cpu", "cpu"], "auto") and not devices.needs_cuda_count(None, "cpu")
    with pytest.raises(DevicesError, match="past 65535"):
        devices.plan(3, None, default_device="cpu", cuda_count=0, metrics_port=65534)
