"""The checkpointing benchmark on a small batch: the checkpointed DRM keeps >= 40% fewer activations for
backward and gives the plain network's gradients exactly (issue 14)."""

from __future__ import annotations

import pytest
import torch

from riskstudy.bench_checkpointing import _wrapped_keys, checkpoint_model, run_benchmark
from riskstudy.config import DRMParams
from riskstudy.nn.checkpointing import Checkpointed
from riskstudy.nn.drm import DeepRiskModel


def test_wrapping_reaches_the_gat_and_both_encoders_and_keeps_the_weights():
    torch.manual_seed(0)
    plain = DeepRiskModel(DRMParams(n_factors=4, hidden_size=8))
    wrapped = checkpoint_model(DeepRiskModel(DRMParams(n_factors=4, hidden_size=8)))
    assert isinstance(wrapped.gat, Checkpointed)
    assert isinstance(wrapped.head_1.encoder, Checkpointed) and isinstance(wrapped.head_2.encoder, Checkpointed)
    state = _wrapped_keys(plain.state_dict(), wrapped)
    wrapped.load_state_dict(state)  # strict: every key maps
    assert len(state) == len(plain.state_dict())


def test_checkpointing_cuts_saved_activations_by_40_percent_with_identical_gradients():
    res = run_benchmark(days=6, stocks=30, n_factors=4, hidden_size=8, reps=1, device="cpu")
    assert res["saved_reduction"] >= 0.4
    assert res["max_grad_diff"] == pytest.approx(0.0, abs=1e-6)
    assert res["plain_step_s"] > 0 and res["tft_encoder_s"] > 0 and res["members"] > 0
