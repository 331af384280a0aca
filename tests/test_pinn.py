"""elulab.pinn: Taylor-mode derivatives against nested autograd, problems, loss, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from elulab.data import load_burgers
from elulab.functional import activation_spec
from elulab.pinn import (
    MLP,
    TAYLOR_ACTIVATIONS,
    Points,
    activation_jet,
    burgers,
    compile_loss,
    linear_exponential,
    poisson_2d,
    stiff_ode,
)

F64 = torch.float64


def nested_autograd(net: MLP, x: torch.Tensor, create_graph: bool = False):
    """u, du (N, out, in), the full Hessian (N, out, in, in) by double backward."""
    x = x.clone().requires_grad_(True)
    u = net(x)
    du, hess = [], []
    for k in range(u.shape[1]):
        (g,) = torch.autograd.grad(u[:, k].sum(), x, create_graph=True)
        rows = []
        for i in range(x.shape[1]):
            (h,) = torch.autograd.grad(g[:, i].sum(), x, create_graph=create_graph,
                                       retain_graph=True, allow_unused=True)  # fmt: skip
            rows.append(torch.zeros_like(x) if h is None else h)
        du.append(g)
        hess.append(torch.stack(rows, 1))
    return u, torch.stack(du, 1), torch.stack(hess, 1)


def _net(act: str, d: int, out: int, width: int, depth: int, seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    net = MLP(d, out, width, depth, act).double()
    with torch.no_grad():  # non-zero biases, so pre-activations land on both sides
        for layer in net.layers:
            layer.bias.normal_(0.0, 0.5)
    return net


def _assert_taylor_is_nested_autograd(net, x: torch.Tensor) -> None:
    """u, du, the Hessian diagonal and the full Hessian of Taylor mode, to 1e-12 absolute."""
    u, du, d2u = net.taylor(x)
    _, _, hm = net.taylor(x, mixed=True)
    ru, rdu, rh = nested_autograd(net, x)
    tol = {"rtol": 0.0, "atol": 1e-12}
    torch.testing.assert_close(u, ru, **tol)
    torch.testing.assert_close(du, rdu, **tol)
    torch.testing.assert_close(d2u, torch.diagonal(rh, dim1=2, dim2=3), **tol)
    torch.testing.assert_close(hm, rh, **tol)


@pytest.mark.parametrize("act", TAYLOR_ACTIVATIONS)
def test_taylor_equals_nested_autograd_for_every_activation(act: str) -> None:
    net = _net(act, 3, 2, 7, 3)
    x = torch.randn(11, 3, dtype=F64)
    _assert_taylor_is_nested_autograd(net, x)


@settings(max_examples=25, deadline=None)
@given(
    act=st.sampled_from(["elu", "tanh", "sin", "silu", "gelu", "softplus", "celu", "selu"]),
    d=st.integers(1, 3), out=st.integers(1, 2), width=st.integers(1, 6), depth=st.integers(1, 3),
    n=st.integers(1, 5), scale=st.sampled_from([0.0, 1e-3, 1.0, 4.0]), seed=st.integers(0, 99),
    zero_bias=st.booleans(),
)  # fmt: skip
def test_taylor_property(act, d, out, width, depth, n, scale, seed, zero_bias) -> None:
    net = _net(act, d, out, width, depth, seed)
    if zero_bias:  # with x = 0 every first-layer pre-activation is exactly 0: the kink
        for layer in net.layers:
            torch.nn.init.zeros_(layer.bias)
    x = scale * torch.randn(n, d, dtype=F64, generator=torch.Generator().manual_seed(seed))
    _assert_taylor_is_nested_autograd(net, x)


def test_elu_kink_convention_at_exact_zero() -> None:
    # one hidden ELU unit z = x: u = ELU(x); at x = 0: u' = f'(0) = 1 (alpha), u'' = 0
    net = MLP(1, 1, 1, 1, "elu").double()
    with torch.no_grad():
        net.layers[0].weight.fill_(1.0)
        net.layers[1].weight.fill_(1.0)
    x = torch.tensor([[0.0], [-0.0], [-1e-9], [1e-9]], dtype=F64)
    _, du, d2u = net.taylor(x)
    assert du[:2].ravel().tolist() == [1.0, 1.0]
    assert d2u[:2].ravel().tolist() == [0.0, 0.0]  # torch masks f'' with (z < 0)
    assert d2u[2].item() == pytest.approx(math.exp(-1e-9), abs=1e-15) and d2u[3].item() == 0.0
    _, rdu, rh = nested_autograd(net, x)
    assert torch.equal(du, rdu) and torch.equal(d2u[:, :, 0], rh[:, :, 0, 0])


@pytest.mark.parametrize("name", ["elu", "celu", "selu", "tanh", "sin", "silu", "gelu"])
def test_fused_jets_equal_the_table(name: str) -> None:
    z = torch.tensor([-30.0, -2.0, -1e-9, 0.0, -0.0, 1e-9, 0.4, 3.0, 25.0], dtype=F64)
    spec = activation_spec(name)
    want = (spec.function(z), spec.derivative(z), spec.second(z))
    for got, ref in zip(activation_jet(name)(z), want, strict=True):
        torch.testing.assert_close(got, ref, rtol=4e-16, atol=4e-16)


@pytest.mark.parametrize("act", TAYLOR_ACTIVATIONS)
@pytest.mark.parametrize("second", [None, (0,), (1, 2)])
def test_parameter_gradients_equal_double_backward(act: str, second) -> None:
    # a Burgers-like loss from Taylor mode (the hand-written _JetStep backward for the
    # fused activations, autograd for the others) vs from nested autograd (create_graph)
    net = _net(act, 3, 1, 6, 3)
    x = torch.randn(9, 3, dtype=F64)
    x[:3] = 0.0
    with torch.no_grad():  # some first-layer pre-activations exactly at 0 (the ELU kink)
        net.layers[0].bias[:2] = 0.0
    cols = [0, 1, 2] if second is None else list(second)

    def loss(u, du, d2u):  # d2u: the columns `cols`
        r = du[:, 0, 1] + u[:, 0] * du[:, 0, 0] - 0.1 * d2u[:, 0].sum(1) + u[:, 0] * d2u[:, 0, 0]
        return r.square().mean()

    g1 = torch.autograd.grad(loss(*net.taylor(x, second=second)), list(net.parameters()))
    u, du, h = nested_autograd(net, x, create_graph=True)
    d2 = torch.diagonal(h, dim1=2, dim2=3)[:, :, cols]
    g2 = torch.autograd.grad(loss(u, du, d2), list(net.parameters()))
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=0.0, atol=1e-12)


def test_taylor_refuses_mish_and_bad_shapes() -> None:
    net = MLP(2, 1, 4, 1, "mish")
    assert net(torch.zeros(3, 2)).shape == (3, 1)  # the plain forward works
    with pytest.raises(ValueError, match=r"'mish' has none; allowed: relu, leaky_relu, elu"):
        net.taylor(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\), got \(3, 3\)"):
        MLP(2, 1, 4, 1).taylor(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="depth must be an integer >= 1"):
        MLP(2, 1, 4, 0)


# -- problems ------------------------------------------------------------------------------


def _residual_of_function(problem, u_fn, x):
    """The problem's residual of an explicit function, derivatives by autograd."""
    x = x.clone().requires_grad_(True)
    u = u_fn(x)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    d2 = torch.stack([torch.autograd.grad(g[:, i].sum(), x, retain_graph=True)[0][:, i]
                      for i in range(x.shape[1])], 1)  # fmt: skip
    return problem.residual(x, u, g[:, None, :], d2[:, None, :])


@pytest.mark.parametrize("make", [linear_exponential, stiff_ode, poisson_2d])
def test_analytic_solutions_solve_their_problems(make) -> None:
    p = make()
    pts = p.sample(0)
    r = _residual_of_function(p, p.solution, pts.domain)
    assert float(r.detach().abs().max()) < 1e-12
    for _, x, g, _ in pts.conditions:
        torch.testing.assert_close(p.solution(x), g, rtol=0, atol=1e-14)


def test_burgers_reference_satisfies_the_conditions_and_the_pde() -> None:
    ref = load_burgers()
    assert ref.u.shape == (256, 100) and ref.x[0] == -1.0 and ref.x[-1] == 1.0
    np.testing.assert_allclose(ref.u[:, 0], -np.sin(np.pi * ref.x), atol=1e-6)
    assert np.abs(ref.u[[0, -1], :]).max() < 1e-6
    # finite differences away from the shock: the residual is small relative to u_t
    dx, dt = ref.x[1] - ref.x[0], ref.t[1] - ref.t[0]
    u = ref.u
    ut = (u[:, 2:] - u[:, :-2]) / (2 * dt)
    ux = (u[2:, :] - u[:-2, :]) / (2 * dx)
    uxx = (u[2:, :] - 2 * u[1:-1, :] + u[:-2, :]) / dx**2
    r = ut[1:-1, :] + u[1:-1, 1:-1] * ux[:, 1:-1] - 0.01 / np.pi * uxx[:, 1:-1]
    smooth = (np.abs(ref.x[1:-1]) > 0.3)[:, None] & (ref.t[1:-1] < 0.3)[None, :]
    assert np.abs(r[smooth]).max() < 0.02 * np.abs(ut[1:-1][smooth]).max()
    p = burgers()
    pts = p.sample(3)
    assert pts.domain.shape == (2540, 2) and [len(x) for _, x, _, _ in pts.conditions] == [80, 160]
    bx = pts.conditions[0][1]
    assert set(bx[:, 0].tolist()) == {-1.0, 1.0} and (pts.conditions[1][1][:, 1] == 0).all()
    assert torch.equal(p.sample(3).domain, pts.domain) and not torch.equal(p.sample(4).domain,
                                                                            pts.domain)  # fmt: skip


def test_loss_terms_and_one_line_errors() -> None:
    p = linear_exponential(n_domain=16)
    net = MLP(1, 1, 5, 2, "elu").double()
    loss, logs = p.loss(net, p.sample(0))
    assert set(logs) == {"residual", "boundary"}
    assert float(loss.detach()) == pytest.approx(
        float(logs["residual"] + logs["boundary"]), rel=1e-14
    )
    bad = linear_exponential(n_domain=16)
    object.__setattr__(bad, "residual", lambda x, u, du, d2u: d2u)  # (N, 1, 1): wrong
    with pytest.raises(ValueError, match=r"residual must return shape \(16,\) or \(16, k\)"):
        bad.loss(net, bad.sample(0))
    dom = torch.zeros(4, 1, dtype=F64)
    dom[2, 0] = math.nan
    with pytest.raises(ValueError, match=r"domain points must be finite; 1 of 4 rows"):
        Points(dom)
    with pytest.raises(ValueError, match=r"condition 'ends' points must be finite"):
        Points(torch.zeros(2, 1), (("ends", torch.full((1, 1), math.inf), torch.zeros(1, 1), 1.0),))


def test_compile_loss_falls_back_once_with_one_warning() -> None:
    calls = []

    def fn(x):
        calls.append(1)
        return x * 2

    def broken(*a, **k):
        raise RuntimeError("no compiler")

    orig = torch.compile
    torch.compile = broken  # type: ignore[assignment]
    try:
        f = compile_loss(fn)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            assert float(f(torch.tensor(1.0))) == 2.0 and float(f(torch.tensor(2.0))) == 4.0
    finally:
        torch.compile = orig
    assert f.fallback() and len(calls) == 2
    assert [str(x.message) for x in w] == [
        "torch.compile failed (RuntimeError); running the loss eagerly"
    ]


def test_second_selects_coordinates() -> None:
    net = _net("tanh", 3, 2, 5, 2)
    x = torch.randn(6, 3, dtype=F64)
    full = net.taylor(x)
    for dims in ((0,), (2, 0), (1, 2)):
        got = net.taylor(x, second=dims)
        torch.testing.assert_close(got.du, full.du, rtol=0, atol=1e-15)
        torch.testing.assert_close(got.d2u, full.d2u[:, :, list(dims)], rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match=r"second must list input coordinates in 0..2"):
        net.taylor(x, second=(3,))
