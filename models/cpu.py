"""What the CPU offers the models: one answer to "is bf16 worth it here?" for the recipes and the worker."""

from __future__ import annotations

import functools

import torch


@functools.cache
def has_bf16() -> bool:
    """Whether oneDNN has fast bf16 kernels on this CPU (AVX512-BF16 or AMX); without them bf16 autocast is
    emulated and slower than float32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
