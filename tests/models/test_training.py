"""models/training.py: checkpoints restore every stream exactly; the loop stops at its steps or its minutes."""

from __future__ import annotations

import random
import time
from pathlib import Path

import torch

from models import training


def parts(seed: int) -> tuple[dict[str, torch.nn.Module], torch.optim.Optimizer, random.Random, torch.Generator]:
    torch.manual_seed(seed)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=0.1)
    return {"net": net}, opt, random.Random(seed), torch.Generator().manual_seed(seed)


def test_a_checkpoint_restores_weights_moments_and_random_streams(tmp_path: Path) -> None:
    modules, opt, rng, gen = parts(0)
    modules["net"](torch.ones(1, 3)).sum().backward()
    opt.step()
    training.save_state(tmp_path, modules, opt, rng, gen, {"step": 7, "history": [{"event": "x"}]})
    expected = (rng.random(), torch.rand(2, generator=gen))

    restored, opt2, rng2, gen2 = parts(1)
    meta = training.load_state(tmp_path, restored, opt2, rng2, gen2)
    assert meta == {"step": 7, "history": [{"event": "x"}]}
    assert torch.equal(restored["net"].weight, modules["net"].weight)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert (rng2.random(), *torch.rand(2, generator=gen2).tolist()) == (expected[0], *expected[1].tolist())
    assert training.saved_step(tmp_path) == 7 and training.saved_step(tmp_path / "none") is None


def test_v_prediction_works_for_images_and_clips() -> None:
    alphas = torch.linspace(0.99, 0.01, 10)
    for shape in ((2, 4, 8, 8), (2, 4, 3, 8, 8)):
        x0, noise = torch.randn(shape), torch.randn(shape)
        noisy, target = training.v_prediction(x0, noise, alphas, torch.tensor([0, 9]))
        a, s = alphas[0].sqrt(), (1 - alphas[0]).sqrt()
        assert torch.allclose(noisy[0], a * x0[0] + s * noise[0]) and torch.allclose(
            target[0], a * noise[0] - s * x0[0]
        )


class Counting:
    """A recipe whose step costs `delay` seconds: what the loop calls, and when."""

    def __init__(self, delay: float = 0.0) -> None:
        self.step_count, self.seconds, self.probe_losses = 0, 0.0, []
        self.delay = delay
        self.calls: list[str] = []

    def step(self) -> float:
        time.sleep(self.delay)
        self.step_count += 1
        self.probe_losses.append(0.0)
        return 1.0

    def save_state(self, folder: Path) -> None:
        self.calls.append(f"save {self.step_count}")

    def export(self, folder: Path) -> None:
        self.calls.append(f"export {self.step_count}")


def test_the_loop_stops_at_its_steps_and_saves_and_exports_at_the_end(tmp_path: Path) -> None:
    recipe = Counting()
    training.train(recipe, training.Schedule(5, float("inf"), 60, 60), tmp_path, tmp_path, desc="t", log_every=2)
    assert recipe.step_count == 5 and recipe.calls == ["save 5", "export 5"]


def test_the_loop_stops_when_its_minutes_are_spent(tmp_path: Path) -> None:
    recipe = Counting(delay=0.05)
    training.train(recipe, training.Schedule(1000, 0.2 / 60, 60, 60), tmp_path, tmp_path, desc="t")
    assert 1 <= recipe.step_count < 1000
    assert recipe.calls == [f"save {recipe.step_count}", f"export {recipe.step_count}"]


def test_a_run_with_nothing_to_do_writes_nothing(tmp_path: Path) -> None:
    """Weights trained elsewhere, already past this run's goal, keep their training.json."""
    recipe = Counting()
    recipe.step_count = 9
    training.train(recipe, training.Schedule(5, float("inf"), 60, 60), tmp_path, tmp_path, desc="t")
    assert recipe.step_count == 9 and recipe.calls == []
