"""Tests of elulab.nn.VanillaRNN: its initialisation (the documented draws, in order),
its forward recursion against an independent loop, and its errors."""

from __future__ import annotations

import math

import pytest
import torch

from elulab.nn import VanillaRNN, orthogonal


def _reference_init(d: int, n: int, k: int, gain: float, input_var: float, seed: int):
    """The documented init, written out: W = g Q, U ~ N(0, var/d), V ~ U(+-1/sqrt n)."""
    gen = torch.Generator().manual_seed(seed)
    w = gain * orthogonal(n, gen, torch.float32)
    u = torch.randn(n, d, generator=gen) * math.sqrt(input_var / d)
    v = torch.empty(k, n).uniform_(-1 / math.sqrt(n), 1 / math.sqrt(n), generator=gen)
    return w, u, v


def test_init_is_the_documented_one_bitwise() -> None:
    rnn = VanillaRNN(28, 24, 10, "elu", gain=1.5, input_var=0.5,
                     generator=torch.Generator().manual_seed(7))  # fmt: skip
    w, u, v = _reference_init(28, 24, 10, 1.5, 0.5, seed=7)
    assert [name for name, _ in rnn.named_parameters()] == ["w", "u", "b", "out.weight", "out.bias"]
    assert torch.equal(rnn.w, w) and torch.equal(rnn.u, u) and torch.equal(rnn.out.weight, v)
    assert not rnn.b.any() and not rnn.out.bias.any()
    s = torch.linalg.svdvals(rnn.w.detach().double())
    torch.testing.assert_close(s, torch.full((24,), 1.5, dtype=torch.float64), rtol=1e-6, atol=0)


def test_u_has_the_stated_variance() -> None:
    # Var[(U x)_i] = input_var for a standardised x: over 512 x 256 entries the sample
    # variance of U * d is input_var within 2% (relative standard error sqrt(2/131072)).
    rnn = VanillaRNN(256, 512, 2, "relu", input_var=0.8, generator=torch.Generator().manual_seed(0))
    assert float(rnn.u.detach().var() * 256) == pytest.approx(0.8, rel=0.02)


@pytest.mark.parametrize("act, params", [("relu", {}), ("tanh", {}), ("elu", {"alpha": 0.5})])
def test_forward_is_the_recursion(act: str, params: dict[str, float]) -> None:
    rnn = VanillaRNN(5, 8, 3, act, generator=torch.Generator().manual_seed(1), **params)
    with torch.no_grad():
        rnn.b.copy_(torch.linspace(-0.3, 0.3, 8))
    x = torch.randn(4, 6, 5, generator=torch.Generator().manual_seed(2))
    f = {
        "relu": lambda z: torch.where(z > 0, z, 0.0),
        "tanh": lambda z: 1 - 2 / (torch.exp(2 * z) + 1),
        "elu": lambda z: torch.where(z > 0, z, 0.5 * torch.expm1(z)),
    }[act]
    h = torch.zeros(4, 8)
    with torch.no_grad():
        for t in range(6):
            h = f(rnn.w @ h.T + rnn.u @ x[:, t].T + rnn.b[:, None]).T
        want = h @ rnn.out.weight.T + rnn.out.bias
        torch.testing.assert_close(rnn(x), want, rtol=1e-5, atol=1e-6)
    assert rnn(x).shape == (4, 3)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"hidden_size": 0}, "hidden_size must be an int >= 1"),
        ({"input_size": 2.0}, "input_size must be an int >= 1"),
        ({"gain": 0.0}, "gain must be a positive finite number"),
        ({"input_var": math.inf}, "input_var must be a positive finite number"),
        ({"activation": "swish"}, "unknown activation 'swish'"),
    ],
)
def test_bad_arguments(kw: dict, match: str) -> None:
    args = {"input_size": 3, "hidden_size": 4, "out_features": 2, "activation": "relu", **kw}
    with pytest.raises(ValueError, match=match):
        VanillaRNN(**args)


def test_bad_input_shape() -> None:
    rnn = VanillaRNN(3, 4, 2, "relu", generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"expects input \(B, T, 3\), got \(2, 5, 4\)"):
        rnn(torch.zeros(2, 5, 4))
