"""Fused Linear + ELU-family + (Alpha)Dropout blocks (elulab.nn._fused).

References: float64 autograd of the plain composition (gradcheck and bitwise forward for
the eager kernels), the composition itself (ulp bound of the compiled kernel in eval
mode, output distribution in training), and saved-tensor byte counts for the memory
claim. The compiled kernels are compiled once for the module (one float32 variant each,
dynamic shapes), so the compile cost is paid once.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from scipy import stats
from torch import nn

from elulab.nn import (
    CELU,
    ELU,
    SELU,
    SNN,
    AlphaDropout,
    FusedLinearELU,
    ScaledELU,
    _fused,
    fused_bias_elu_dropout,
    lecun_normal_,
)

ACTS = {
    "selu": lambda: SELU(),
    "elu": lambda: ELU(0.7),
    "celu": lambda: CELU(1.3),
    "scaled": lambda: ScaledELU(1.2, 1.5),
}
DROPS = {"none": lambda: None, "alpha": lambda: AlphaDropout(0.2), "plain": lambda: nn.Dropout(0.3)}


def _ulp(a: torch.Tensor, b: torch.Tensor) -> int:
    """Largest distance in units in the last place (float32), signs handled."""
    ia, ib = (t.float().view(torch.int32).long() for t in (a, b))
    ia = torch.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = torch.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return int((ia - ib).abs().max())


def _block(act: str, drop: str, impl: str, dtype=torch.float64) -> FusedLinearELU:
    torch.manual_seed(0)
    return FusedLinearELU(6, 5, activation=ACTS[act](), dropout=DROPS[drop](), impl=impl).to(dtype)


# -- the eager kernels: exact against autograd of the composition --------------------------


@pytest.mark.parametrize("drop", list(DROPS))
@pytest.mark.parametrize("act", list(ACTS))
def test_backward_from_output_matches_autograd(act: str, drop: str) -> None:
    # dL/ds = a lam (kept, s > 0), c (y - b + a lam alpha) (kept, s <= 0), 0 (dropped):
    # gradcheck in float64 against finite differences, the mask fixed by the seed
    block = _block(act, drop, "eager")
    x = torch.randn(7, 6, dtype=torch.float64, requires_grad=True)

    def f(x, w, b):
        torch.manual_seed(3)
        s = nn.functional.linear(x, w, b)
        return _fused._BiasELUDropout.apply(s, None, block._current_plan(), drop != "none", "eager")

    assert torch.autograd.gradcheck(f, (x, block.linear.weight, block.linear.bias))
    # the same forward (bitwise, random draws included) and gradients as autograd's
    # through the composition, for AlphaDropout and no dropout (nn.Dropout draws its
    # mask with bernoulli_, not rand_like)
    if drop != "plain":
        torch.manual_seed(3)
        y = block(x)
        torch.manual_seed(3)
        ref = block._compose(x)
        assert torch.equal(y, ref)
        g = torch.randn_like(y)
        params = (x, block.linear.weight, block.linear.bias)
        for a, b in zip(
            torch.autograd.grad(y, params, g), torch.autograd.grad(ref, params, g), strict=True
        ):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)


def test_elementwise_op_and_bias_gradient() -> None:
    z = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True)
    drop = AlphaDropout(0.25)

    def f(z, bias):
        torch.manual_seed(1)
        return fused_bias_elu_dropout(z, bias, activation=CELU(0.8), dropout=drop, impl="eager")

    assert torch.autograd.gradcheck(f, (z, bias))
    drop.eval()  # dropout follows the module's mode, as the module does
    torch.testing.assert_close(f(z, bias), CELU(0.8)(z + bias), rtol=0, atol=0)


def test_saved_bytes_per_element() -> None:
    """The memory claim: 5 bytes per hidden element saved (9 unfused), 4 without dropout (8)."""

    def saved_bytes(net: nn.Module, x: torch.Tensor) -> int:
        skip = {t.untyped_storage().data_ptr() for t in (x, *net.parameters())}
        seen: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:  # distinct storages, not x or weights
            st = t.untyped_storage()
            if st.data_ptr() not in skip:
                seen[st.data_ptr()] = st.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(x).sum()
        return sum(seen.values())

    x = torch.randn(64, 32)
    n = 64 * 32 * 4  # hidden elements: batch x width x depth
    for p, fused_b, plain_b in ((0.1, 5, 9), (0.0, 4, 8)):
        kw = dict(depth=4, width=32, dropout=p, generator=torch.Generator().manual_seed(0))
        # with an output layer, which saves the last hidden output as its input
        fused = saved_bytes(SNN(32, 3, fused=True, impl="eager", **kw).train(), x)
        plain = saved_bytes(SNN(32, 3, fused=False, **kw).train(), x)
        assert (fused, plain) == (fused_b * n, plain_b * n)


def test_snn_unfused_is_the_earlier_composition_bit_for_bit() -> None:
    # snn_uci builds SNN(..., fused=False): the same modules, weights and outputs as the
    # hand-built Linear -> SELU -> AlphaDropout sequence of earlier versions
    net = SNN(10, 3, depth=3, width=16, dropout=0.05, fused=False,
              generator=torch.Generator().manual_seed(4))  # fmt: skip
    g = torch.Generator().manual_seed(4)
    layers: list[nn.Module] = []
    for n_in in (10, 16, 16):
        layers += [nn.Linear(n_in, 16), SELU(), AlphaDropout(0.05)]
    old = nn.Sequential(*layers, nn.Linear(16, 3))
    for m in old.modules():
        if isinstance(m, nn.Linear):
            lecun_normal_(m.weight, generator=g)
            nn.init.zeros_(m.bias)
    assert [type(m) for m in net] == [type(m) for m in old]
    x = torch.randn(32, 10)
    for a, b in zip(net.parameters(), old.parameters(), strict=True):
        assert torch.equal(a, b)
    torch.manual_seed(5)
    ya = net(x)
    torch.manual_seed(5)
    assert torch.equal(ya, old(x))
    # the fused builder draws the same initial weights, in the same order
    fused = SNN(10, 3, depth=3, width=16, dropout=0.05, generator=torch.Generator().manual_seed(4))
    for a, b in zip(fused.parameters(), net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_falls_back_to_the_composition() -> None:
    block = _block("selu", "alpha", "eager", torch.float32)
    seen: list[torch.Size] = []
    handle = block.activation.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    block(torch.randn(3, 6))
    handle.remove()
    assert seen == [torch.Size([3, 5])]  # a hook on a child: the composition ran
    traced = torch.fx.symbolic_trace(block.train())
    assert any(n.target is torch.rand_like for n in traced.graph.nodes)
    out = torch.func.vmap(block.eval())(torch.randn(4, 2, 6))  # torch.func: composition
    assert out.shape == (4, 2, 5)
    unknown = FusedLinearELU(6, 5, activation=nn.Tanh())  # not ELU-family: composition
    torch.testing.assert_close(unknown(torch.ones(1, 6)), unknown._compose(torch.ones(1, 6)))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="impl must be one of auto, compile"):
        FusedLinearELU(3, 3, impl="fast")
    with pytest.raises(RuntimeError, match="impl='triton' needs a CUDA tensor"):
        FusedLinearELU(3, 3, impl="triton")(torch.randn(2, 3))
    with pytest.raises(TypeError, match="fused must be a bool"):
        SNN(3, 2, fused=1)  # type: ignore[arg-type]


# -- the compiled kernels: compiled once for this module -----------------------------------


@pytest.fixture(scope="module")
def compiled() -> None:
    """Compile the four float32 kernels once (tiny tensors; dynamic shapes after)."""
    _fused._reset_compile_state()
    z = torch.randn(4, 8, requires_grad=True)
    drop = AlphaDropout(0.1)
    for d in (None, drop):
        y = fused_bias_elu_dropout(z, None, dropout=d, impl="compile")
        y.backward(torch.ones_like(y))
    if not _fused.compile_available():
        pytest.skip(f"torch.compile unavailable here: {_fused._compile_failed}")


def _grid(n: int = 1 << 16) -> torch.Tensor:
    """Pre-activations over [-20, 20] and log-spaced near 0 (where expm1 is delicate)."""
    small = torch.logspace(-12, 0, n // 4)
    return torch.cat([torch.linspace(-20, 20, n // 2), small, -small])


@pytest.mark.parametrize("act", list(ACTS))
def test_compiled_eval_within_a_few_ulp(compiled: None, act: str) -> None:
    # measured: at most 2 ulp (SELU, ELU, CELU) and 3 (ScaledELU, whose composition
    # rounds lam * (alpha expm1) where the kernel rounds (alpha lam) expm1) on this grid
    s = _grid().view(-1, 64)  # 2-D, as compiled by the fixture (no recompilation)
    m = ACTS[act]()
    y = fused_bias_elu_dropout(s, None, activation=m, impl="compile")
    assert _ulp(y, m(s)) <= 3


def test_compiled_block_eval_and_gradient(compiled: None) -> None:
    torch.manual_seed(0)
    block = FusedLinearELU(64, 128, dropout=AlphaDropout(0.05), impl="compile").eval()
    x = torch.randn(256, 64, requires_grad=True)
    y = block(x)
    ref = block._compose(x)  # the pre-activation is nn.Linear's, bitwise (addmm)
    assert _ulp(y, ref) <= 2
    g = torch.randn_like(y)
    params = (x, block.linear.weight, block.linear.bias)
    for a, b in zip(
        torch.autograd.grad(y, params, g), torch.autograd.grad(ref, params, g), strict=True
    ):
        # float32 GEMMs over 256 rows on gradients that differ by a few ulp per element
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_compiled_training_keeps_the_distribution(compiled: None) -> None:
    # input at the fixed point (0, 1), AlphaDropout(0.1): output mean 0 and variance 1.
    # n = 2**20: sd of the mean 1e-3, of the variance < 2.3e-3 (kurtosis < 6); 5 sd
    n, p = 1 << 20, 0.1
    drop = AlphaDropout(p)
    torch.manual_seed(0)
    s = torch.randn(1024, 1024)
    # SELU of N(0, 1) has mean 0 and variance 1 (the fixed point, to 1e-4)
    y = fused_bias_elu_dropout(s, None, dropout=drop, impl="compile")
    ref = drop(SELU()(s))
    for out in (y, ref):
        assert abs(out.mean().item()) < 5e-3 and abs(out.var().item() - 1) < 1.2e-2
    assert abs(y.mean().item() - ref.mean().item()) < 5 * math.sqrt(2 / n)
    assert abs(y.var().item() - ref.var().item()) < 5 * math.sqrt(2) * 2.3e-3
    # the same distribution: a two-sample KS test on 2e5 values each (fixed seeds)
    assert stats.ks_2samp(y.flatten()[:200_000], ref.flatten()[:200_000]).pvalue > 1e-3
    # drop rate: binomial, 5 sd; dropped units equal the composition's fill exactly
    fill = torch.tensor(drop.alpha_prime) * drop.a + drop.b  # float32, as the kernel
    dropped = y == fill
    rate = dropped.double().mean().item()
    assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / n)
    # the mask is not correlated with its neighbour, nor with the next call's mask
    k = dropped.flatten().double()
    k2 = (fused_bias_elu_dropout(s, None, dropout=drop, impl="compile") == fill).double()
    for a, b in ((k[1:], k[:-1]), (k, k2.flatten())):
        assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 5 / math.sqrt(n)


def test_compiled_backward_kernel_matches_eager(compiled: None) -> None:
    y = _grid(1 << 12).view(64, 64)
    code = torch.randint(0, 3, y.shape, dtype=torch.uint8)
    gy = torch.randn_like(y)
    plan = _fused._plan(SELU(), AlphaDropout(0.2))
    assert plan is not None
    for c in (code, None):
        eager = _fused._backward("eager", gy, y, c, plan)
        comp = _fused._backward("compile", gy, y, c, plan)
        assert _ulp(eager, comp) <= 1


def test_compile_failure_warns_once_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fn, **kw):
        def run(*args):
            raise RuntimeError("no C++ compiler")

        return run

    saved = dict(_fused._compiled), _fused._compile_failed
    monkeypatch.setattr(_fused, "_torch_compile", broken)
    _fused._reset_compile_state()
    try:
        z = torch.randn(8, 8, requires_grad=True)
        with pytest.warns(RuntimeWarning, match="no C.. compiler.*eager kernels run instead"):
            y1 = fused_bias_elu_dropout(z, None, impl="compile")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # said once, not per call
            y2 = fused_bias_elu_dropout(z, None, impl="compile")
            y2.sum().backward()
        # the failing call ran the kernel's own ops eagerly (a few ulp from torch.selu);
        # later calls run the eager kernels (torch.selu itself)
        assert _ulp(y1, SELU()(z)) <= 2 and torch.equal(y2, SELU()(z))
    finally:
        _fused._compiled.clear()
        _fused._compiled.update(saved[0])
        _fused._compile_failed = saved[1]


# -- CUDA / Triton (a GPU machine only) ----------------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize("drop", ["none", "alpha"])
def test_triton_kernels_match_eager(drop: str) -> None:
    pytest.importorskip("triton")
    dev = torch.device("cuda")
    torch.manual_seed(0)
    z = (_grid(1 << 16).view(256, 256)).to(dev).requires_grad_()
    bias = torch.randn(256, device=dev, requires_grad=True)
    d = DROPS[drop]()
    y = fused_bias_elu_dropout(z, bias, dropout=d, impl="triton")
    if d is None:
        assert _ulp(y.cpu(), SELU()(z + bias).cpu()) <= 4
    else:
        rate = (y == d.a * d.alpha_prime + d.b).double().mean().item()
        assert abs(rate - d.p) < 5 * math.sqrt(d.p * (1 - d.p) / y.numel())
    g = torch.randn_like(y)
    gz, gb = torch.autograd.grad(y, (z, bias), g)
    plan = _fused._plan(SELU(), d)
    ref = _fused._backward("eager", g, y.detach(), None if d is None else _code(y, d), plan)
    torch.testing.assert_close(gz, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gb, ref.sum(0), rtol=1e-4, atol=1e-4)


def _code(y: torch.Tensor, d: AlphaDropout) -> torch.Tensor:
    fill = d.a * d.alpha_prime + d.b
    kept = y != fill
    return (kept.to(torch.uint8) + (kept & (y > d.b)).to(torch.uint8)).detach()
