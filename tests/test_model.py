"""The full model: parallel forward versus step mode for every preset, blockwise state."""

from __future__ import annotations

import pytest
import torch

from pianossm.config import preset
from pianossm.model import PianoSSM
from pianossm.params import model_count


def random_model(name: str, dtype: torch.dtype, seed: int = 0) -> PianoSSM:
    torch.manual_seed(seed)
    model = PianoSSM(preset(name, heads=("a", "b", "c"), audio_std=0.06, audio_mean=-1e-3))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # random stable eigenvalues: |lambda| in [e^-4, 1], Re <= -1e-3
        for block in model.blocks:
            h = block.ssm.d_state
            mag = torch.exp(torch.rand(h, generator=g) * 4 - 4)
            re = -torch.maximum(torch.rand(h, generator=g) * mag, torch.full((h,), 1e-3))
            im = torch.sqrt((mag**2 - re**2).clamp(min=0)) * torch.sign(torch.randn(h, generator=g))
            block.ssm.log_mag.copy_(torch.log(torch.sqrt(re**2 + im**2)))
            block.ssm.angle.copy_(torch.atan2(im, re))
    return model.to(dtype).eval()


def random_features(frames: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    keys = (torch.rand(1, frames, 88, generator=g) < 0.05).to(dtype)
    return keys * torch.rand(1, frames, 88, generator=g).to(dtype)


@pytest.mark.parametrize("name", ["S", "L", "XL"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_forward_equals_step(name: str, dtype: torch.dtype) -> None:
    model = random_model(name, dtype)
    hop, ts = 4, 1.6
    feats = random_features(60, dtype)
    with torch.no_grad():
        par = model(feats, hop, ts, head=2)[0]
        mats = model.discretise(ts)
        state = model.default_state(1, torch.complex128 if dtype == torch.float64
                                    else torch.complex64)
        head = torch.tensor([2])
        out = []
        for t in range(feats.shape[1] * hop):
            y, state = model.step(feats[:, t // hop], state, mats, head)
            out.append(y)
    step = torch.cat(out)
    rel = (par - step).abs().max() / step.abs().max()
    assert rel < 1e-5, f"{name} {dtype}: relative difference {rel:.2e}"


def test_blockwise_with_carried_state_equals_one_pass() -> None:
    model = random_model("S", torch.float64, seed=3)
    feats = random_features(200, torch.float64, seed=3)
    with torch.no_grad():
        whole = model(feats, 5, 1.0, head=1)
        state, parts = None, []
        for a, b in [(0, 1), (1, 64), (64, 150), (150, 200)]:
            y, state = model(feats[:, a:b], 5, 1.0, head=1, state=state, return_state=True)
            parts.append(y)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, rtol=1e-10, atol=1e-12)


def test_heads_are_selected_per_item() -> None:
    model = random_model("S", torch.float64, seed=4)
    feats = random_features(30, torch.float64, seed=4).expand(3, -1, -1)
    with torch.no_grad():
        out = model(feats, 2, 1.0, head=torch.tensor([0, 1, 2]))
        for i in range(3):
            torch.testing.assert_close(out[i], model(feats[:1], 2, 1.0, head=i)[0])
    assert not torch.allclose(out[0], out[1])


def test_parameter_count_matches_model() -> None:
    for name in ("S", "L", "XL"):
        model = PianoSSM(preset(name, heads=tuple("abcdefghij")))
        assert sum(p.numel() for p in model.parameters()) == model_count(model.config)
