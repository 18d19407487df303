"""The compiled training scan: values and gradients against the chunked scan and a loop."""

from __future__ import annotations

import pytest
import torch

from pianossm.config import preset
from pianossm.gemm import tanh_skip
from pianossm.losses import MSSL
from pianossm.model import PianoSSM
from pianossm.scan import sequential_scan
from pianossm.scan_compiled import HAVE_NUMBA, compiled_scan
from pianossm.ssm import scan_backend

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")

PRESETS = {"XL": 256, "L": 128, "S": 64}


def _reference(a: torch.Tensor, v: torch.Tensor, x0: torch.Tensor, hold: int,
               t_len: int) -> torch.Tensor:
    """The same recurrence with a plain loop on complex tensors, in ``[Re | Im]`` layout."""
    h = a.shape[0]
    vc = torch.complex(v[..., :h], v[..., h:]).repeat_interleave(hold, 1)[:, :t_len]
    x = sequential_scan(torch.log(a), vc, torch.complex(x0[..., :h], x0[..., h:]))
    return torch.cat([x.real, x.imag], -1)


def _inputs(rng: torch.Generator, bsz: int, frames: int, h: int) -> tuple[torch.Tensor, ...]:
    a = torch.exp(torch.complex(-torch.rand(h, generator=rng, dtype=torch.float64) * 0.5,
                                torch.randn(h, generator=rng, dtype=torch.float64)))
    v = torch.randn(bsz, frames, 2 * h, generator=rng, dtype=torch.float64)
    x0 = torch.randn(bsz, 2 * h, generator=rng, dtype=torch.float64)
    return a.requires_grad_(), v.requires_grad_(), x0.requires_grad_()


@pytest.mark.parametrize("threads", [1, 2])
# 600 and 647 samples span several of the backward kernel's 256-sample blocks.
@pytest.mark.parametrize("hold,frames,t_len", [(1, 70, 70), (3, 9, 25), (4, 8, 17),
                                               (1, 600, 600), (5, 130, 647)])
def test_values_and_gradients_equal_a_loop(threads: int, hold: int, frames: int,
                                           t_len: int) -> None:
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rng = torch.Generator().manual_seed(hold * 100 + threads)
        a, v, x0 = _inputs(rng, 3, frames, 5)
        got = compiled_scan(a, v, x0, hold, t_len)
        ref = _reference(a, v, x0, hold, t_len)
        assert got.shape == (3, t_len, 10)
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
        w = torch.randn(got.shape, generator=rng, dtype=torch.float64)
        g_got = torch.autograd.grad((got * w).sum(), (a, v, x0))
        g_ref = torch.autograd.grad((ref * w).sum(), (a, v, x0))
        for x, y in zip(g_got, g_ref):
            torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-10)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("name", list(PRESETS))
def test_gradcheck_every_preset_state_size(name: str) -> None:
    rng = torch.Generator().manual_seed(len(name))
    a, v, x0 = _inputs(rng, 2, 3, PRESETS[name])
    assert torch.autograd.gradcheck(lambda a, v, x0: compiled_scan(a, v, x0, 4, 11),
                                    (a, v, x0), fast_mode=True)


def _train_step(model: PianoSSM, scan: str, feats: torch.Tensor, target: torch.Tensor,
                hop: int) -> dict[str, torch.Tensor]:
    """One MSSL + Adam step from the same start; the parameters after it."""
    model = PianoSSM(model.config).double()
    model.load_state_dict(start_state)
    model.set_scan(scan)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = MSSL(16000, fft_sizes=(64, 128))(model(feats, hop), target)["loss"]
    opt.zero_grad()
    loss.backward()
    opt.step()
    return {k: p.detach().clone() for k, p in model.named_parameters()}


start_state: dict[str, torch.Tensor] = {}


@pytest.mark.parametrize("name", list(PRESETS))
def test_training_step_equals_the_chunked_scan(name: str) -> None:
    torch.manual_seed(0)
    model = PianoSSM(preset(name, train_sample_rate=16000)).double()
    start_state.clear()
    start_state.update(model.state_dict())
    hop = 16
    feats = torch.rand(2, 24, 88, dtype=torch.float64)
    target = 0.05 * torch.randn(2, 24 * hop, dtype=torch.float64)
    fast = _train_step(model, "compiled", feats, target, hop)
    slow = _train_step(model, "chunked", feats, target, hop)
    moved = 0.0
    for key, ref in slow.items():
        rel = float((fast[key] - ref).norm() / ref.norm().clamp_min(1e-300))
        assert rel < 1e-6, (key, rel)
        moved = max(moved, float((ref - start_state[key]).norm()))
    assert moved > 1e-4  # the step did change the parameters


def test_backend_is_picked_by_device_and_can_be_forced() -> None:
    model = PianoSSM(preset("S", d_state=4))
    assert scan_backend(model) == "compiled"
    assert scan_backend(model, dtype=torch.complex64) == "chunked"  # not a real CPU tensor
    model.set_scan("chunked")
    assert scan_backend(model) == "chunked"
    from pianossm.errors import PianoSSMError

    with pytest.raises(PianoSSMError, match="unknown scan 'fast'"):
        model.set_scan("fast")


@pytest.mark.parametrize("with_skip", [False, True])
def test_tanh_skip_equals_torch_and_passes_gradcheck(with_skip: bool) -> None:
    rng = torch.Generator().manual_seed(7)
    y = (3 * torch.randn(4, 33, 5, generator=rng, dtype=torch.float64)).requires_grad_()
    s = torch.randn(4, 33, 5, generator=rng, dtype=torch.float64).requires_grad_() if with_skip else None
    got = tanh_skip(y, s, 0.7)
    want = (torch.tanh(y) + (0 if s is None else s)) * 0.7
    torch.testing.assert_close(got, want, rtol=1e-14, atol=1e-14)
    inputs = (y, s) if with_skip else (y,)
    assert torch.autograd.gradcheck(lambda *t: tanh_skip(t[0], t[1] if with_skip else None, 0.7),
                                    inputs)
    # float32 matches torch's float32 tanh to rounding
    y32 = y.detach().float()
    torch.testing.assert_close(tanh_skip(y32, None, 1.0), torch.tanh(y32), rtol=2e-7, atol=2e-7)


def test_float32_column_sums_of_the_linear_backward() -> None:
    import numpy as np

    from pianossm.gemm import _column_sums

    rng = np.random.default_rng(3)
    for m in (3, 1024, 5000, 70001):
        g = (rng.standard_normal((m, 9)) + 0.5).astype(np.float32)
        want = g.astype(np.float64).sum(0)
        got = _column_sums(g)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-6)
