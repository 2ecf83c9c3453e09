"""A dict of processes for dict states (GDSS: VP on node features, VE on adjacency).

Every method returns a :class:`~core.types.StateDict` with one entry per field, so samplers written
with state arithmetic run unchanged; all fields share the time ``t``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.seeding import Generator, randn
from core.types import State, StateDict


class ProcessDict(ForwardProcess):
    def __init__(self, processes: Mapping[str, ForwardProcess]) -> None:
        if not processes:
            raise ValueError("ProcessDict needs at least one field")
        self.processes = dict(processes)
        self.t_min = max(p.t_min for p in self.processes.values())
        self.t_max = min(p.t_max for p in self.processes.values())

    def _each(self, name: str, t: Tensor) -> StateDict:
        return StateDict({k: getattr(p, name)(t) for k, p in self.processes.items()})

    def alpha(self, t: Tensor) -> StateDict:  # type: ignore[override]
        return self._each("alpha", t)

    def sigma(self, t: Tensor) -> StateDict:  # type: ignore[override]
        return self._each("sigma", t)

    def d_alpha(self, t: Tensor) -> StateDict:  # type: ignore[override]
        return self._each("d_alpha", t)

    def d_sigma(self, t: Tensor) -> StateDict:  # type: ignore[override]
        return self._each("d_sigma", t)

    def log_snr(self, t: Tensor) -> StateDict:  # type: ignore[override]
        return self._each("log_snr", t)

    def drift_coef(self, t: Tensor) -> StateDict:  # type: ignore[override]
        return self._each("drift_coef", t)

    def diffusion_sq(self, t: Tensor) -> StateDict:  # type: ignore[override]
        return self._each("diffusion_sq", t)

    def t_from_log_snr(self, lam: Tensor) -> Tensor:
        raise NotImplementedError("a ProcessDict has one log-SNR per field; schedule in t instead")

    def perturb(self, x0: State, t: Tensor, noise: State) -> StateDict:
        return StateDict({k: p.perturb(x0[k], t, noise[k]) for k, p in self.processes.items()})  # type: ignore[index]

    def sde(self, x: State, t: Tensor) -> tuple[StateDict, StateDict]:
        out = {k: p.sde(x[k], t) for k, p in self.processes.items()}  # type: ignore[index]
        return StateDict({k: v[0] for k, v in out.items()}), StateDict({k: v[1] for k, v in out.items()})

    def prior_std(self) -> StateDict:  # type: ignore[override]
        return StateDict({k: p.prior_std() for k, p in self.processes.items()})

    def prior_sample(self, shape: Sequence[int] | Mapping[str, Sequence[int]], generator: Generator = None,
                     *, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> StateDict:
        if not isinstance(shape, Mapping):
            raise TypeError("a ProcessDict needs a dict of shapes, one per field")
        return StateDict({k: self.processes[k].prior_std() * randn(shape[k], generator, device=device, dtype=dtype)
                          for k in sorted(self.processes)})

    def prior_like(self, x: State, generator: Generator = None) -> StateDict:
        return self.prior_sample({k: v.shape for k, v in x.items()}, generator,  # type: ignore[union-attr]
                                 device=next(iter(x.values())).device, dtype=next(iter(x.values())).dtype)  # type: ignore[union-attr]

    def prior_logp(self, x: State) -> Tensor:  # type: ignore[override]
        return torch.stack([p.prior_logp(x[k]) for k, p in self.processes.items()]).sum(0)  # type: ignore[index]

    def config(self) -> dict[str, Any]:
        return {k: {"name": type(p).__name__, **p.config()} for k, p in self.processes.items()}
