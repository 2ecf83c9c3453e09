"""All conversions between what a network predicts and the clean-data estimate ``x0_hat``.

With ``x_t = a x0 + s eps`` (``a, s`` and their time derivatives ``da, ds`` broadcast to the state):

    eps       : x0 = (x - s eps) / a
    x0        : x0 = x0
    v         : v = a eps - s x0            ->  x0 = (a x - s v) / (a^2 + s^2)
    score     : score = -eps / s            ->  x0 = (x + s^2 score) / a
    velocity  : u = da x0 + ds eps          ->  x0 = (ds x - s u) / (ds a - s da)

``v`` is the Salimans–Ho target generalised to any (a, s); ``velocity`` is the flow-matching
``d x_t / dt`` (in diffusci's time direction). ``from_x0`` is the exact inverse of ``to_x0``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from core.registry import UnknownNameError

Prediction = Literal["eps", "x0", "v", "score", "velocity"]
PREDICTIONS: tuple[str, ...] = get_args(Prediction)


def check_prediction(name: str) -> str:
    if name not in PREDICTIONS:
        raise UnknownNameError(f"unknown parameterization {name!r}; valid choices: {', '.join(PREDICTIONS)}")
    return name


def to_x0(pred: str, out: Any, x: Any, a: Any, s: Any, da: Any = None, ds: Any = None) -> Any:
    """Clean-data estimate from a network output ``out`` of kind ``pred``."""
    check_prediction(pred)
    if pred == "x0":
        return out
    if pred == "eps":
        return (x - s * out) / a
    if pred == "v":
        return (a * x - s * out) / (a * a + s * s)
    if pred == "score":
        return (x + s * s * out) / a
    return (ds * x - s * out) / (ds * a - s * da)


def eps_from_x0(x0: Any, x: Any, a: Any, s: Any) -> Any:
    return (x - a * x0) / s


def from_x0(pred: str, x0: Any, x: Any, a: Any, s: Any, da: Any = None, ds: Any = None) -> Any:
    """The target of kind ``pred`` implied by ``x0`` at ``x`` (used for losses and round trips)."""
    check_prediction(pred)
    if pred == "x0":
        return x0
    eps = eps_from_x0(x0, x, a, s)
    if pred == "eps":
        return eps
    if pred == "v":
        return a * eps - s * x0
    if pred == "score":
        return -eps / s
    return da * x0 + ds * eps


def target(pred: str, x0: Any, eps: Any, a: Any, s: Any, da: Any = None, ds: Any = None) -> Any:
    """Regression target of kind ``pred`` from the clean data and the noise that built ``x_t``."""
    check_prediction(pred)
    return {
        "x0": lambda: x0,
        "eps": lambda: eps,
        "v": lambda: a * eps - s * x0,
        "score": lambda: -eps / s,
        "velocity": lambda: da * x0 + ds * eps,
    }[pred]()
