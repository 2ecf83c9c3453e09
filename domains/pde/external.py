"""External check of the simulation model on the real periodic, unforced Burgers set (catalog entry
``burgers1d_neuralop_res16``: 800 train / 400 test trajectories, 17 frames x 16 points, nu = 0.01).

The set is read only through its catalog entry (checksums verified). Its periodic grid is closed
by repeating ``x = 0`` at ``x = 1`` (17 columns, so the state layout's last, known-zero column is the
usual padding), the forcing is zero and given, and a model with the run's network and
representation is trained on the train split with ``validate.external_steps`` steps (the run's
batch size and optimiser). It is scored like the main task: MSE of ``u`` over ``t > 0`` on the
first ``validate.external_n`` test trajectories (the wrap column excluded), next to the trivial
persistence forecast ``u(t) = u0`` and the FNO baseline trained with the same steps.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from core.catalog import data_root, get_entry, verify
from core.provenance import RunDir
from domains.pde.data import physical_scales
from domains.pde.state import Representation, layout_shape, pack

ENTRY = "burgers1d_neuralop_res16"


def load_real(root: Any = None) -> dict[str, Tensor]:
    """``u_train [800, 17, 17]``, ``u_test [400, 17, 17]`` (periodic grid closed by the wrap column)."""
    import numpy as np

    entry = get_entry(ENTRY)
    verify(entry, root)
    with np.load((root or data_root()) / entry.files[0].path) as z:
        arrays = {k: torch.from_numpy(z[k].copy()) for k in ("y_train", "y_test")}
    out = {}
    for split in ("train", "test"):
        y = arrays[f"y_{split}"].double()
        if y.ndim != 3 or not torch.isfinite(y).all():
            raise ValueError(f"{ENTRY}: y_{split} must be a finite [sample, t, x] array, got {tuple(y.shape)}")
        out[f"u_{split}"] = torch.cat([y, y[..., :1]], dim=-1)
    return out


def real_data(cfg: Any, root: Any = None) -> tuple[Any, dict[str, Tensor]]:
    """A config on the real set's grid and the domain's data dictionary for it (zero forcing)."""
    raw = load_real(root)
    nt, nx = raw["u_train"].shape[1] - 1, raw["u_train"].shape[2]
    data = {k: v.float() for k, v in raw.items()}
    for split in ("train", "test"):
        data[f"f_{split}"] = torch.zeros(raw[f"u_{split}"].shape[0], nt, nx)
    scales = physical_scales(raw["u_train"], torch.ones(1))
    data["scales"] = scales.float()
    rep = Representation("wavelet", layout_shape(nt, nx), cfg.network.wavelet, tol=cfg.network.wavelet_tol)
    bands = rep.transform(pack(data["u_train"], data["f_train"], data["scales"]))
    data["band_scales"] = bands.pow(2).mean(dim=(0, 2, 3)).sqrt().clamp_min(1e-3)
    d = cfg.data.model_copy(update={"nx": nx, "nt": nt})
    net = cfg.network.model_copy(update={"tasks": ["simulation"]})
    return cfg.model_copy(update={"data": d, "network": net}), data


def mse_periodic(u_hat: Tensor, u: Tensor) -> float:
    """MSE over ``t > 0`` on the 16 original grid points (the wrap column is excluded)."""
    return float((u_hat[:, 1:, :-1].double() - u[:, 1:, :-1].double()).pow(2).mean())


def external_check(dom: Any, cfg: Any, run: RunDir) -> dict[str, Any]:
    """Train and score the run's diffusion model (and the FNO) on the real set; returns ``external_*`` metrics."""
    from domains.pde.evaluate import diffusion_predictor, fitted_fno, train_diffusion
    from domains.pde.fno import predict_fno

    v, steps = cfg.validate_, cfg.validate_.external_steps
    ecfg, data = real_data(cfg)
    n = min(v.external_n, data["u_test"].shape[0])
    u, f = data["u_test"][:n], data["f_test"][:n]
    t0 = time.perf_counter()
    model = train_diffusion(dom, ecfg, data, run, steps, "external")
    t1 = time.perf_counter()
    u_hat, nfe = diffusion_predictor(dom, ecfg, model, data)(0, u, f)
    t2 = time.perf_counter()
    fno = fitted_fno(cfg, data, run, steps, "fno", "external")
    u_fno = torch.cat([u[:, :1], predict_fno(fno, u[:, 0], f, data["scales"])], 1)
    persistence = u[:, :1].expand_as(u)
    return {"external_dataset": ENTRY, "external_n": n, "external_steps": steps, "external_nfe": nfe,
            "external_mse_wdno": mse_periodic(u_hat, u), "external_mse_fno": mse_periodic(u_fno, u),
            "external_mse_persistence": mse_periodic(persistence, u),
            "external_mean_u2": float(u[:, 1:, :-1].double().pow(2).mean()),
            "external_train_s": t1 - t0, "external_infer_s": t2 - t1}


__all__ = ["ENTRY", "external_check", "load_real", "mse_periodic", "real_data"]
