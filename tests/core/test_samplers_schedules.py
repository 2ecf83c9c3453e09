"""Step schedules: the contract every registered schedule passes on every single process."""

from __future__ import annotations

import pytest
import torch

from core.processes import PROCESSES, make_process
from core.samplers import SCHEDULES, make_schedule

F64 = torch.float64


@pytest.mark.parametrize("steps", [1, 7, 50])
@pytest.mark.parametrize("process_name", PROCESSES.names())
@pytest.mark.parametrize("schedule", SCHEDULES.names())
def test_schedule_contract(schedule, process_name, steps):
    process = make_process(process_name)
    ts = make_schedule(schedule, process, steps)
    assert ts.shape == (steps + 1,) and ts.dtype == F64
    assert float(ts[0]) == pytest.approx(process.t_max, abs=1e-12)
    assert float(ts[-1]) == pytest.approx(process.t_min, abs=1e-12)
    assert (ts[1:] < ts[:-1]).all()


def test_logsnr_schedule_is_uniform_in_log_snr():
    process = make_process("vp")
    lam = process.log_snr(make_schedule("logsnr", process, 12))
    torch.testing.assert_close(torch.diff(lam), torch.full((12,), float(lam[1] - lam[0]), dtype=F64))


def test_karras_on_edm_is_edms_uniform_grid():
    process = make_process("edm")
    for steps in (5, 18, 40):
        ts = make_schedule("karras", process, steps, rho=process.rho)
        torch.testing.assert_close(ts, make_schedule("uniform", process, steps), rtol=0, atol=1e-9)


def test_power_schedule_is_uniform_in_root_t_and_serves_dict_processes():
    process = make_process("vp")
    ts = make_schedule("power", process, 10, rho=2.0)
    root = ts.sqrt()
    torch.testing.assert_close(torch.diff(root), torch.full((10,), float(root[1] - root[0]), dtype=F64))
    steps = -torch.diff(ts)
    assert (steps[1:] < steps[:-1]).all()  # finer toward t_min
    torch.testing.assert_close(make_schedule("power", process, 9, rho=1.0), make_schedule("uniform", process, 9))
    dict_process = make_process({"x": {"name": "vp"}, "adj": {"name": "ve"}})
    ts = make_schedule("power", dict_process, 8, rho=3.0)
    assert float(ts[0]) == pytest.approx(dict_process.t_max) and float(ts[-1]) == pytest.approx(dict_process.t_min)
    assert (ts[1:] < ts[:-1]).all()
    with pytest.raises(ValueError, match="rho"):
        make_schedule("power", process, 8, rho=0.0)


def test_schedule_errors():
    process = make_process("vp")
    with pytest.raises(KeyError) as err:
        make_schedule("cosine-ish", process, 10)
    for name in SCHEDULES.names():
        assert name in str(err.value)
    with pytest.raises(ValueError):
        make_schedule("uniform", process, 0)
    dict_process = make_process({"x": {"name": "vp"}, "adj": {"name": "ve"}})
    with pytest.raises(ValueError, match="uniform"):
        make_schedule("logsnr", dict_process, 10)


def test_schedule_options_are_checked_by_name():
    process = make_process("vp")
    torch.testing.assert_close(make_schedule("power", process, 6, rho=3.0),
                               make_schedule("power", process, 6, **{"rho": 3.0}))
    with pytest.raises(ValueError, match="'uniform' has no option"):
        make_schedule("uniform", process, 6, rho=2.0)
    with pytest.raises(ValueError, match="takes \\['rho'\\]"):
        make_schedule("power", process, 6, gamma=2.0)
