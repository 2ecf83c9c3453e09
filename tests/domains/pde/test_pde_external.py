"""External check on the real periodic Burgers set: loading through the catalog, grid closure, scoring."""

from __future__ import annotations

import pytest
import torch

from core.catalog import data_root
from domains.pde.external import load_real, mse_periodic, real_data

needs_real_set = pytest.mark.skipif(not (data_root() / "pde" / "burgers1d_neuralop_res16.npz").exists(),
                                    reason="data root absent (the real Burgers set is reached through the catalog)")


@needs_real_set
def test_real_set_is_read_through_the_catalog_and_closed_periodically():
    raw = load_real()
    assert raw["u_train"].shape == (800, 17, 17) and raw["u_test"].shape == (400, 17, 17)
    assert torch.equal(raw["u_test"][..., -1], raw["u_test"][..., 0])  # wrap column = x = 0
    # viscous, unforced: the mean energy <u^2> decays frame by frame
    energy = raw["u_train"][..., :-1].pow(2).mean(dim=(0, 2))
    assert bool((energy[1:] < energy[:-1]).all()) and float(energy[0]) == pytest.approx(0.0477, abs=5e-4)


@needs_real_set
def test_real_data_grid_and_zero_forcing():
    from domains import get_domain

    cfg, data = real_data(get_domain("pde").load_config("smoke", ["network.tasks=[simulation,control]"]))
    assert (cfg.data.nt, cfg.data.nx) == (16, 17) and cfg.network.tasks == ["simulation"]
    assert float(data["f_train"].abs().max()) == 0.0 and data["band_scales"].shape == (8,)


def test_periodic_mse_ignores_t0_and_the_wrap_column():
    u = torch.zeros(2, 3, 5)
    v = u.clone()
    v[:, 0] = 9.0  # t = 0 is given, not scored
    v[..., -1] = 7.0  # wrap column duplicates x = 0
    assert mse_periodic(v, u) == 0.0
    v[:, 1:, 0] = 2.0
    assert mse_periodic(v, u) == pytest.approx(4.0 / 4)


def test_missing_real_file_is_named(tmp_path):
    from core.catalog import DataError

    with pytest.raises(DataError, match="burgers1d_neuralop_res16"):
        load_real(tmp_path)
