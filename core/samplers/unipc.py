"""UniPC (Zhao et al. 2023), data prediction, B(h) = expm1(-h) ("bh2"), order 2 with the UniC corrector.

Each step predicts ``x_s`` with UniP from the current and previous denoiser outputs, evaluates the
denoiser at the prediction, and corrects the step with that evaluation (UniC), reusing it for the next
step — so the corrector costs no extra network evaluation. The last step is not corrected.
"""

from __future__ import annotations

from typing import Any

from core.samplers.base import call_back, finish, tvec
from core.samplers.dpm_solver import _expm1, half_log_snr
from core.samplers.registry import SAMPLERS
from core.samplers.spaces import EuclideanSpace
from core.tensor_utils import bcast


def _coefficients(h: Any, r: Any | None) -> tuple[Any, Any, Any, Any]:
    """``(phi_1, B_h, rho_p, (rho_c0, rho_c1))`` for one step; ``r`` is the previous step ratio."""
    hh = -h
    phi_1 = _expm1(hh)  # e^{-h} - 1
    b_h = phi_1
    g1 = phi_1 / hh - 1.0
    g2 = g1 / hh - 0.5
    b1, b2 = g1 / b_h, 2.0 * g2 / b_h
    if r is None:
        return phi_1, b_h, None, (None, 0.5)
    # solve [[1, 1], [r, 1]] [c0, c1]^T = [b1, b2]^T
    c0 = (b1 - b2) / (1.0 - r)
    c1 = b1 - c0
    return phi_1, b_h, 0.5, (c0, c1)


@SAMPLERS.register("unipc")
def sample_unipc(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None) -> Any:
    space = space or EuclideanSpace()
    n = len(ts) - 1
    t0 = tvec(ts[0], x)
    m0 = denoiser(x, t0, cond)
    prev: tuple[Any, Any] | None = None  # (model output, λ) of the step before
    for i in range(n):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        lam_t, lam_s = half_log_snr(process, t), half_log_snr(process, s)
        h = lam_s - lam_t
        r = None if prev is None else (prev[1] - lam_t) / h
        phi_1, b_h, rho_p, (c0, c1) = _coefficients(h, r)
        a_s = process.alpha(s)
        x_base = bcast(process.sigma(s) / process.sigma(t), x) * x - bcast(a_s * phi_1, x) * m0
        d1 = None if prev is None or r is None else (prev[0] - m0) / bcast(r, x)
        x_pred = x_base if d1 is None else x_base - bcast(a_s * b_h * rho_p, x) * d1
        x_pred = space.project(x_pred, s, cond)
        if i == n - 1:
            x = x_pred
            call_back(callback, i, ts[i], x, m0)
            break
        m_s = denoiser(x_pred, s, cond)
        corr = bcast(c1, x) * (m_s - m0)
        if d1 is not None:
            corr = corr + bcast(c0, x) * d1
        x = space.project(x_base - bcast(a_s * b_h, x) * corr, s, cond)
        call_back(callback, i, ts[i], x, m0)
        prev, m0 = (m0, lam_t), m_s
    return finish(denoiser, x, ts[-1], space, cond)
