"""The SSM layer: parallel versus step mode, ZOH closed forms, stability."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pianossm.ssm import DiagonalSSM


def randomise(layer: DiagonalSSM, g: torch.Generator) -> None:
    """Random parameters, including unstable angles (the fold must stabilise them)."""
    with torch.no_grad():
        h = layer.d_state
        layer.log_mag.copy_(torch.rand(h, generator=g) * 4 - 5)
        layer.angle.copy_((torch.rand(h, generator=g) * 2 - 1) * np.pi)
        for p in (layer.B, layer.B_bias, layer.C, layer.C_bias):
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def test_eigenvalues_are_stable_and_fold_only_unstable_ones() -> None:
    layer = DiagonalSSM(3, 8, 2)
    randomise(layer, torch.Generator().manual_seed(1))
    lam = layer.eigenvalues()
    assert torch.all(lam.real <= 0)
    raw = torch.exp(torch.complex(layer.log_mag, layer.angle))
    stable = raw.real <= 0
    torch.testing.assert_close(lam[stable], raw[stable])
    torch.testing.assert_close(lam.abs(), raw.abs())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("ts", [1.0, 44100 / 16000])
def test_forward_equals_step(dtype: torch.dtype, ts: float) -> None:
    g = torch.Generator().manual_seed(7)
    layer = DiagonalSSM(5, 16, 4)
    randomise(layer, g)
    layer = layer.to(dtype)
    u = torch.randn(2, 300, 5, generator=g).to(dtype)
    y_par, s_par = layer(u, ts)
    d = layer.discretise(ts)
    state = layer.default_state(2, s_par.dtype)
    ys = []
    for t in range(u.shape[1]):
        y, state = layer.step(u[:, t], state, d)
        ys.append(y)
    y_step = torch.stack(ys, dim=1)
    rel = (y_par - y_step).abs().max() / y_step.abs().max()
    assert rel < 1e-5
    torch.testing.assert_close(s_par, state, rtol=1e-4, atol=1e-5)


def test_dc_gain_is_independent_of_step() -> None:
    """ZOH keeps the continuous steady state ``x = -(B u + b) / lambda`` at every Ts."""
    g = torch.Generator().manual_seed(3)
    layer = DiagonalSSM(2, 6, 3).double()
    randomise(layer, g)
    with torch.no_grad():
        layer.log_mag.clamp_(min=-1.0)  # decays fast enough to settle in 3000 steps
    u = torch.tensor([[0.7, -0.2]], dtype=torch.float64)
    lam = layer.eigenvalues()
    bu = torch.view_as_complex(layer.B.contiguous()) @ u[0].to(torch.complex128)
    bu = bu + torch.view_as_complex(layer.B_bias.contiguous())
    x_ss = -bu / lam
    y_ss = (torch.view_as_complex(layer.C.contiguous()) @ x_ss).real + layer.C_bias
    for ts in (0.5, 1.0, 2.75625):
        y, _ = layer(u[:, None].expand(1, 3000, 2), ts)
        torch.testing.assert_close(y[0, -1], y_ss.detach(), rtol=1e-8, atol=1e-8)


def test_zoh_first_step_matches_exact_integral() -> None:
    """One ZOH step from zero with unit input equals ``B (exp(lambda Ts) - 1) / lambda``."""
    layer = DiagonalSSM(1, 4, 1).double()
    randomise(layer, torch.Generator().manual_seed(5))
    ts = 0.37
    d = layer.discretise(ts)
    lam = layer.eigenvalues()
    b = torch.view_as_complex(layer.B.contiguous())[:, 0]
    want = b * (torch.exp(lam * ts) - 1) / lam
    torch.testing.assert_close(d.bd[:, 0], want)


def test_tiny_eigenvalue_uses_series() -> None:
    layer = DiagonalSSM(1, 2, 1).double()
    with torch.no_grad():
        layer.log_mag.fill_(-30.0)  # |lambda| ~ 1e-13
        layer.angle.fill_(2.0)
        layer.B.fill_(1.0)
    d = layer.discretise(2.0)
    assert torch.all(torch.isfinite(d.bd.real))
    torch.testing.assert_close(d.bd[:, 0], torch.full((2,), 2 + 2j, dtype=torch.complex128))
