"""Gradient checkpointing of any sub-module, and a meter of the activation memory autograd keeps.

:class:`Checkpointed` wraps a module so that its forward pass keeps no intermediate activations
for the backward pass; they are recomputed during backward (``torch.utils.checkpoint``,
non-reentrant, ``preserve_rng_state=True``: dropout draws the same masks in the recomputation, so
gradients are identical to the plain module's). In eval mode or without gradients it is the plain
module.

:func:`saved_activation_bytes` measures what checkpointing saves, on any device: the bytes of the
tensors autograd saves for backward during one forward pass (``saved_tensors_hooks``), which is
the activation part of peak training memory (on CUDA, ``torch.cuda.max_memory_allocated`` measures
the whole peak; the benchmark reports both).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class Checkpointed(nn.Module):
    """``module`` with gradient checkpointing in training mode (module docstring).

    Parameters
    ----------
    module : nn.Module
        Its attributes stay reachable as ``wrapper.module`` (e.g. ``out_features``).
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        if hasattr(module, "out_features"):
            self.out_features = module.out_features

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            return checkpoint(self.module, *args, use_reentrant=False, preserve_rng_state=True)
        return self.module(*args)


def maybe_checkpointed(module: nn.Module, enabled: bool) -> nn.Module:
    """``Checkpointed(module)`` when ``enabled``, else ``module`` itself."""
    return Checkpointed(module) if enabled else module


def saved_activation_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn()`` runs (each storage counted once)."""
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        seen[(s.data_ptr(), s.nbytes())] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return int(sum(seen.values()))
