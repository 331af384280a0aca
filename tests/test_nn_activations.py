"""Tests for elulab.nn activations: ELU/CELU/SELU modules, Sin, and the get_activation
registry, parametrised over every registered name."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import elulab.functional as efn
from elulab.functional import SELU_ALPHA, SELU_LAMBDA, activation_function, celu, elu, selu
from elulab.nn import ACTIVATIONS, CELU, ELU, SELU, Sin, get_activation

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def _bits(t: torch.Tensor) -> torch.Tensor:
    itype = {2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    return t.contiguous().view(itype)


def _x(shape: tuple[int, ...] = (257,), dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 3).to(dtype)


# Independent float64 formulas (written from the definitions, not from torch's functional
# API) for every registered name; the first test below makes a new registry entry fail
# until it gets a reference here.
def _phi(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


REFERENCE = {
    "relu": lambda x: torch.where(x > 0, x, 0.0),
    "leaky_relu": lambda x: torch.where(x > 0, x, 0.01 * x),
    "elu": lambda x: torch.where(x > 0, x, torch.expm1(x)),
    "celu": lambda x: torch.where(x > 0, x, torch.expm1(x)),  # alpha = 1
    "selu": lambda x: SELU_LAMBDA * torch.where(x > 0, x, SELU_ALPHA * torch.expm1(x)),
    "gelu": lambda x: x * _phi(x),
    "silu": lambda x: x / (1 + torch.exp(-x)),
    "mish": lambda x: x * torch.tanh(torch.log1p(torch.exp(x))),
    "tanh": lambda x: (torch.exp(2 * x) - 1) / (torch.exp(2 * x) + 1),
    "sigmoid": lambda x: 1 / (1 + torch.exp(-x)),
    "softplus": lambda x: torch.log1p(torch.exp(x)),
    "sin": lambda x: torch.sin(x),
    # E elu(x + s Z), s = 0.25, integrated by hand: x Phi + s phi + e^{x+s^2/2} Phi(-t-s) - Phi(-t)
    "smooth_elu": lambda x: (
        x * _phi(4 * x)
        + 0.25 * torch.exp(-8 * x * x) / math.sqrt(2 * math.pi)
        + torch.exp(x + 0.03125) * 0.5 * torch.erfc((4 * x + 0.25) / math.sqrt(2))
        - 0.5 * torch.erfc(4 * x / math.sqrt(2))
    ),
}


def test_every_registered_name_has_an_independent_reference() -> None:
    assert set(REFERENCE) == set(ACTIVATIONS)


# ---------------------------------------------------------------------------
# registry, parametrised over every name
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_registry_module_equals_functional(name: str) -> None:
    module = get_activation(name)
    assert isinstance(module, nn.Module)
    for dtype in (torch.float32, torch.float64):
        x = _x(dtype=dtype)
        assert torch.equal(_bits(module(x)), _bits(activation_function(name)(x)))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_registry_module_matches_formula(name: str) -> None:
    x = _x().clamp(-20, 20)  # keep exp(2x) etc. of the naive formulas finite
    # the naive formulas lose a few ulp (exp then subtract / divide): 1e-13 relative,
    # plus an absolute 1e-15 for values that cancel to ~0
    torch.testing.assert_close(get_activation(name)(x), REFERENCE[name](x), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(), (5,), (2, 3, 4), (0, 3)], ids=str)
def test_registry_shapes_and_determinism(name: str, shape: tuple[int, ...]) -> None:
    x = _x(shape, torch.float32)
    before = x.clone()
    first, second = get_activation(name)(x), get_activation(name)(x)
    assert first.shape == x.shape and first.dtype == x.dtype
    assert torch.equal(_bits(first), _bits(second))
    assert torch.equal(_bits(x), _bits(before))  # default modules do not work in place


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_registry_gradient_flows(name: str) -> None:
    x = _x((64,)).requires_grad_(True)
    get_activation(name)(x).pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad != 0).sum() >= 16  # every activation has a non-zero slope somewhere
    # compare with the gradient of the independent formula
    xr = x.detach().clone().requires_grad_(True)
    REFERENCE[name](xr).pow(2).sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_registry_name_normalisation(name: str) -> None:
    for spelling in (name.upper(), name.replace("_", "-"), f"  {name.title()} "):
        assert type(get_activation(spelling)) is type(get_activation(name))


def test_registry_gives_elulab_modules_for_the_elu_family() -> None:
    assert type(get_activation("elu")) is ELU
    assert type(get_activation("CELU")) is CELU
    assert type(get_activation("selu")) is SELU
    assert type(get_activation("sin")) is Sin
    assert type(get_activation("leaky-relu")) is nn.LeakyReLU


def test_registry_kwargs_class_instance_none() -> None:
    m = get_activation("elu", alpha=0.5, inplace=True)
    assert (m.alpha, m.inplace) == (0.5, True)
    assert get_activation("leaky_relu", negative_slope=0.2).negative_slope == 0.2
    assert type(get_activation(nn.GELU, approximate="tanh")) is nn.GELU
    assert get_activation(CELU, alpha=2.0).alpha == 2.0
    instance = nn.Hardswish()
    assert get_activation(instance) is instance
    assert type(get_activation(None)) is nn.Identity


def test_registry_errors() -> None:
    with pytest.raises(ValueError, match="unknown activation 'swish'; allowed: relu, leaky_relu"):
        get_activation("swish")
    with pytest.raises(TypeError, match="ReLU does not accept the keyword arguments"):
        get_activation("relu", alpha=1.0)
    with pytest.raises(TypeError, match="cannot be applied to a module instance"):
        get_activation(nn.ReLU(), inplace=True)
    with pytest.raises(TypeError, match="cannot be applied to None"):
        get_activation(None, alpha=1.0)
    for bad in (3, F.relu, torch.Tensor, ["relu"]):
        with pytest.raises(TypeError, match="expected a name"):
            get_activation(bad)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        get_activation("celu", alpha=0.0)


# ---------------------------------------------------------------------------
# ELU, CELU, SELU, Sin modules
# ---------------------------------------------------------------------------

PAIRS = [
    (lambda: ELU(), lambda: nn.ELU()),
    (lambda: ELU(alpha=0.3), lambda: nn.ELU(alpha=0.3)),
    (lambda: CELU(alpha=1.7), lambda: nn.CELU(alpha=1.7)),
    (lambda: SELU(), lambda: nn.SELU()),
]


@pytest.mark.parametrize("pair", range(len(PAIRS)))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_modules_bitwise_equal_torch_modules(pair: int, dtype: torch.dtype) -> None:
    ours, theirs = PAIRS[pair][0](), PAIRS[pair][1]()
    x = _x((1000,), dtype)
    assert torch.equal(_bits(ours(x)), _bits(theirs(x)))
    assert isinstance(ours, type(theirs))  # subclasses: torch tooling recognises them


@pytest.mark.parametrize("cls", [ELU, CELU, SELU])
def test_inplace_modules(cls: type[nn.Module]) -> None:
    x = _x((50,))
    ref = cls()(x)
    y = x.clone()
    out = cls(inplace=True)(y)
    assert out.data_ptr() == y.data_ptr() and torch.equal(y, ref)


def test_repr_and_attributes() -> None:
    assert repr(ELU()) == "ELU(alpha=1.0)"
    assert repr(ELU(2, inplace=True)) == "ELU(alpha=2.0, inplace=True)"
    assert repr(CELU(alpha=0.5)) == "CELU(alpha=0.5)"
    assert repr(SELU()) == "SELU()" and repr(SELU(inplace=True)) == "SELU(inplace=True)"
    assert repr(Sin()) == "Sin()"
    assert (SELU.scale, SELU.alpha) == (SELU_LAMBDA, SELU_ALPHA)
    for m in (ELU(), CELU(), SELU(), Sin()):
        assert not list(m.parameters()) and not m.state_dict()


@pytest.mark.parametrize("cls", [ELU, CELU])
@pytest.mark.parametrize("alpha", [0.0, -1.0, math.inf, math.nan])
def test_bad_alpha_rejected_at_construction(cls: type[nn.Module], alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        cls(alpha=alpha)


@pytest.mark.parametrize("cls", [ELU, CELU])
def test_bad_alpha_type_and_inplace_type(cls: type[nn.Module]) -> None:
    with pytest.raises(TypeError, match="alpha must be a real number"):
        cls(alpha="1")
    with pytest.raises(TypeError, match="inplace must be a bool"):
        cls(inplace=1)
    with pytest.raises(TypeError, match="inplace must be a bool"):
        SELU(inplace="yes")


def test_modules_copy_and_pickle() -> None:
    x = _x((10,))
    for m in (ELU(0.4), CELU(3.0), SELU(), Sin()):
        for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
            assert repr(clone) == repr(m) and torch.equal(clone(x), m(x))


def test_modules_in_a_network_train_and_double_backward() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), ELU(0.5), nn.Linear(8, 8), CELU(2.0), nn.Linear(8, 1))
    x = torch.randn(16, 3, requires_grad=True)
    out = net(x)
    # gradient penalty: needs second derivatives of the activations through autograd
    (gx,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    loss = out.pow(2).mean() + gx.pow(2).sum(dim=1).mean()
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_sin_module() -> None:
    x = _x((100,))
    assert torch.equal(Sin()(x), torch.sin(x))


# -- torch.fx ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module", [ELU(), ELU(alpha=0.5), CELU(alpha=2.0), SELU(), Sin()], ids=repr
)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_modules_symbolic_trace_bitwise(module: nn.Module, dtype: torch.dtype) -> None:
    traced = torch.fx.symbolic_trace(module)
    # one call of elulab's function (a leaf of the graph), not its internals
    calls = [n for n in traced.graph.nodes if n.op in ("call_function", "call_method")]
    assert len(calls) == 1
    x = _x((3, 257), dtype)
    assert torch.equal(_bits(traced(x)), _bits(module(x)))


def test_traced_network_gradients_bitwise() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), ELU(0.7), nn.Linear(16, 16), CELU(1.5), SELU())
    net = net.double()
    traced = torch.fx.symbolic_trace(net)
    x = _x((32, 6))
    y_eager, y_traced = net(x), traced(x)
    assert torch.equal(_bits(y_traced), _bits(y_eager))
    g_eager = torch.autograd.grad(y_eager.square().sum(), list(net.parameters()))
    g_traced = torch.autograd.grad(y_traced.square().sum(), list(traced.parameters()))
    for a, b in zip(g_eager, g_traced, strict=True):
        assert torch.equal(_bits(a), _bits(b))


@pytest.mark.parametrize("fn", [elu, celu, selu], ids=lambda f: f.__name__)
def test_functional_still_rejects_non_tensors(fn) -> None:
    # letting fx Proxies through (__torch_function__) must keep the error for bad input
    name = fn.__name__
    with pytest.raises(TypeError, match=rf"^{name}: input must be a torch.Tensor, got list$"):
        fn([1.0, 2.0])
    with pytest.raises(TypeError, match=rf"^{name}: input must be a torch.Tensor, got ndarray$"):
        fn(np.zeros(2))
    with pytest.raises(TypeError, match=rf"^{name}: input must have a real floating dtype"):
        fn(torch.zeros(2, dtype=torch.int64))


class _Closed(nn.Module):
    """Closed forms of elulab.functional inside a model (the flows use them this way)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = efn.elu(x, 0.5)
        return (
            efn.elu_inverse(y, 0.5)
            + efn.elu_derivative(x, 0.5, order=2)
            + efn.celu_derivative(x, 2.0)
            + efn.selu_derivative(x)
            + efn.elu_log_abs_det_jacobian(x, 0.5)
        )


class _Inverse(nn.Module):
    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return efn.elu_inverse(y, 0.5)


def test_functional_closed_forms_trace_as_leaves() -> None:
    # elu_inverse checks its domain with a data-dependent branch, which fx cannot trace
    # through; through __torch_function__ each function is one call of the graph
    traced = torch.fx.symbolic_trace(_Closed())
    targets = [n.target for n in traced.graph.nodes if n.op == "call_function"]
    assert efn.elu_inverse in targets and efn.elu_derivative in targets
    x = _x((4, 64))
    assert torch.equal(_bits(traced(x)), _bits(_Closed()(x)))
    # the traced graph keeps the check: a value below -alpha still raises
    bad = torch.fx.symbolic_trace(_Inverse())
    with pytest.raises(ValueError, match=r"^elu_inverse: every element must lie in the domain"):
        bad(torch.tensor([0.3, -0.6], dtype=torch.float64))
