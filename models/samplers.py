"""Two diffusers schedulers made safe for schedules whose top sigma is huge, like the shipped model's cosine one.

A cosine schedule (`squaredcos_cap_v2`) caps its last beta at 0.999, so its top sigma is ~20,000 where Stable
Diffusion's is ~14.6, and the next timestep down is already at ~640. The stock schedulers assume a gentler top:
DPM++ 2M Karras overran its sigmas (IndexError) and Euler ancestral rounded its way to NaN (a black picture). Each
subclass below changes only what breaks; on a Stable Diffusion schedule both sample as the stock ones do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler
from diffusers.schedulers.scheduling_euler_ancestral_discrete import EulerAncestralDiscreteScheduler


class KarrasDPMSolverMultistepScheduler(DPMSolverMultistepScheduler):
    """DPM++ 2M on Karras sigmas, spaced from no higher than `SIGMA_MAX`, always starting at the first step.

    diffusers spaces Karras sigmas between the schedule's own extremes. From a top of ~20,000, rho=7 spacing puts
    most steps above sigma(t=997) ~ 320, and they all map to the same integer timestep: those steps are spent on
    pure noise (10 steps drew the wrong background 8 times in 9), and the repeated first timestep makes diffusers
    start at its second copy (its rule for img2img), so the last step reads a sigma past the end: IndexError from
    5 steps up. img2img pipelines still choose their own start, after `set_timesteps`.
    """

    #: Karras et al.'s (EDM) own sigma_max: the top of the spacing where a model's schedule goes higher.
    SIGMA_MAX = 80.0

    def _convert_to_karras(self, in_sigmas: Any, num_inference_steps: int) -> Any:
        capped = np.minimum(np.asarray(in_sigmas), self.SIGMA_MAX)
        return super()._convert_to_karras(capped, num_inference_steps)

    def set_timesteps(self, *args: Any, **kwargs: Any) -> None:
        super().set_timesteps(*args, **kwargs)
        self.set_begin_index(0)


class SafeEulerAncestralDiscreteScheduler(EulerAncestralDiscreteScheduler):
    """Euler ancestral whose step sizes are worked out in float64.

    The step down from sigma_from to sigma_to is sqrt(sigma_to² - sigma_up²), with sigma_up² = sigma_to² (1 - r)
    and r = sigma_to² / sigma_from². From sigma ~20,000, r falls below float32's resolution, the difference rounds
    to a tiny negative number, and its square root is NaN: every image at 4 steps came out NaN on the shipped
    model. The sigmas (0-dim, on the CPU) are float64 only inside `step`; the sample keeps its own dtype and device.
    """

    def step(self, *args: Any, **kwargs: Any) -> Any:
        sigmas = self.sigmas
        self.sigmas = sigmas.to(torch.float64)
        try:
            return super().step(*args, **kwargs)
        finally:
            self.sigmas = sigmas
