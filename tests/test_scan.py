"""The chunked LTI scan against a sequential loop (slow reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pianossm.scan import lti_scan, sequential_scan


def random_log_a(h: int, dtype: torch.dtype) -> torch.Tensor:
    re = -torch.rand(h, dtype=torch.float64) ** 3 * 0.5  # slow and fast decays
    im = (torch.rand(h, dtype=torch.float64) * 2 - 1) * np.pi
    return torch.complex(re, im).to(dtype)


@pytest.mark.parametrize("t_len", [1, 7, 32, 33, 100, 1025, 2500])
@pytest.mark.parametrize("chunk", [4, 32])
@pytest.mark.parametrize("with_x0", [False, True])
def test_scan_matches_sequential_float64(t_len: int, chunk: int, with_x0: bool) -> None:
    g = torch.Generator().manual_seed(t_len * 31 + chunk)
    h, b = 6, 2
    log_a = random_log_a(h, torch.complex128)
    v = torch.randn(b, t_len, h, dtype=torch.complex128, generator=g)
    x0 = torch.randn(b, h, dtype=torch.complex128, generator=g) if with_x0 else None
    got = lti_scan(log_a, v, x0, chunk)
    want = sequential_scan(log_a, v, x0)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_scan_float32_relative_error(rng: np.random.Generator) -> None:
    # Inputs rounded to float32 first, so only the arithmetic differs from the reference.
    log_a = random_log_a(16, torch.complex64)
    v = torch.randn(1, 5000, 16, dtype=torch.complex64)
    want = sequential_scan(log_a.to(torch.complex128), v.to(torch.complex128))
    got = lti_scan(log_a, v)
    rel = (got.to(torch.complex128) - want).abs().max() / want.abs().max()
    naive = sequential_scan(log_a, v).to(torch.complex128)
    rel_naive = (naive - want).abs().max() / want.abs().max()
    # Nearly undamped states amplify rounding in any float32 method: compare with the loop.
    assert rel < 3 * rel_naive + 1e-6


def test_scan_closed_form_geometric() -> None:
    # Unit impulse: x[t] = a**t exactly.
    log_a = torch.tensor([complex(-0.01, 0.3), complex(-0.2, -2.0)], dtype=torch.complex128)
    v = torch.zeros(1, 300, 2, dtype=torch.complex128)
    v[0, 0] = 1.0
    x = lti_scan(log_a, v)
    t = torch.arange(300, dtype=torch.float64)[:, None]
    torch.testing.assert_close(x[0], torch.exp(log_a[None] * t), rtol=1e-12, atol=1e-14)


def test_scan_gradient_matches_finite_differences() -> None:
    g = torch.Generator().manual_seed(0)
    log_a = random_log_a(3, torch.complex128).requires_grad_(True)
    v = torch.randn(1, 40, 3, dtype=torch.complex128, generator=g).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda la, vv: lti_scan(la, vv, None, 8), (log_a, v))
