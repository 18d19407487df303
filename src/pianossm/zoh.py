"""Zero-order-hold discretisation of a diagonal SSM: the gain and the discrete matrices.

Shared by :mod:`pianossm.ssm` (the layer) and :mod:`pianossm.alias` (the alias modes), so
neither imports the other's module for it.
"""

from __future__ import annotations

import torch

__all__ = ["Discretised", "zoh_gain"]


class Discretised:
    """ZOH-discretised matrices of one layer at one ``Ts`` (a plain record).

    Attributes
    ----------
    log_a : ``(H,)`` complex, ``lambda * Ts`` (so ``lambda_d = exp(log_a)``).
    bd : ``(H, d_in)`` complex, ``B_d``.
    bias : ``(H,)`` complex, ``b_d``.
    c : ``(d_out, H)`` complex, ``C``.
    c_bias : ``(d_out,)`` real, ``c``.
    """

    def __init__(self, log_a: torch.Tensor, bd: torch.Tensor, bias: torch.Tensor,
                 c: torch.Tensor, c_bias: torch.Tensor) -> None:
        self.log_a, self.bd, self.bias, self.c, self.c_bias = log_a, bd, bias, c, c_bias

    @property
    def a(self) -> torch.Tensor:
        """``(H,)`` complex ``lambda_d``."""
        return torch.exp(self.log_a)


def zoh_gain(lam: torch.Tensor, ts: float) -> torch.Tensor:
    """``(exp(lambda Ts) - 1) / lambda``, with its Taylor series where ``|lambda Ts|`` is tiny.

    Parameters
    ----------
    lam : torch.Tensor
        ``(H,)`` complex eigenvalues.
    ts : float
        Step.

    Returns
    -------
    torch.Tensor
        ``(H,)`` complex gain.
    """
    z = lam * ts
    small = z.abs() < 1e-4
    safe = torch.where(small, torch.ones_like(lam), lam)
    exact = (torch.exp(z) - 1) / safe
    series = ts * (1 + z / 2 + z * z / 6)
    return torch.where(small, series, exact)
