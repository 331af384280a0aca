"""Pre-LN Transformer blocks, residual FFN stacks, character LMs, and the smoothed ELU."""

from __future__ import annotations

import math

import mpmath as mp
import pytest
import torch
import torch.nn.functional as F

from elulab.functional import elu, elu_derivative, smooth_elu, smooth_elu_derivative
from elulab.nn import (
    CausalSelfAttention,
    CharFFN,
    CharTransformer,
    ResidualFFN,
    SmoothELU,
    TransformerBlock,
    get_activation,
)

# ---------------------------------------------------------------------------
# causality, attention, pre-LN structure
# ---------------------------------------------------------------------------


def test_char_transformer_is_causal() -> None:
    """Changing the symbol at position k leaves every output before k unchanged."""
    torch.manual_seed(0)
    lm = CharTransformer(65, 12, d_model=16, n_blocks=2, n_heads=4, activation="elu").double()
    x = torch.randint(0, 65, (3, 12))
    base = lm(x)
    for k in (0, 5, 11):
        y = x.clone()
        y[:, k] = (y[:, k] + 7) % 65
        out = lm(y)
        torch.testing.assert_close(out[:, :k], base[:, :k], rtol=0, atol=1e-13)
        assert (out[:, k:] - base[:, k:]).abs().amax() > 1e-3  # position k and later do move


def test_block_jacobian_is_lower_triangular_in_time() -> None:
    torch.manual_seed(1)
    block = TransformerBlock(8, 2, activation="smooth_elu").double()
    x = torch.randn(1, 6, 8, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda u: block(u)[0], x)[:, :, 0]  # (t, d, s, d)
    norms = jac.abs().sum(dim=(1, 3))  # (t, s)
    later = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    assert torch.all(norms[later] == 0)
    assert torch.all(norms[~later] > 0)


def test_attention_equals_explicit_masked_softmax() -> None:
    torch.manual_seed(2)
    attn = CausalSelfAttention(12, 3).double()
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    q, k, v = attn.qkv(x).split(12, dim=-1)
    heads = [slice(4 * h, 4 * h + 4) for h in range(3)]
    mask = torch.full((7, 7), -math.inf, dtype=torch.float64).triu(1)
    out = torch.cat(
        [torch.softmax(q[..., s] @ k[..., s].transpose(-1, -2) / 2.0 + mask, -1) @ v[..., s]
         for s in heads], dim=-1,
    )  # fmt: skip
    torch.testing.assert_close(attn(x), attn.proj(out), rtol=1e-12, atol=1e-14)


def test_pre_ln_leaves_the_residual_stream_untouched() -> None:
    """With zero branch outputs the block is exactly the identity (nothing after the add)."""
    block = TransformerBlock(8, 2, activation="relu")
    for lin in (block.attn.proj, block.ffn.fc2):
        torch.nn.init.zeros_(lin.weight), torch.nn.init.zeros_(lin.bias)
    x = torch.randn(2, 5, 8) * 30
    assert torch.equal(block(x), x)
    res = ResidualFFN(8, activation="gelu")
    x = torch.randn(4, 8)
    want = x + res.ffn.fc2(F.gelu(res.ffn.fc1(F.layer_norm(x, (8,)))))
    torch.testing.assert_close(res(x), want)


# ---------------------------------------------------------------------------
# shapes, activations, initialisation, errors
# ---------------------------------------------------------------------------


def test_shapes_and_parameter_count() -> None:
    lm = CharTransformer(65, 128, d_model=128, n_blocks=5, n_heads=4)
    assert sum(p.numel() for p in lm.parameters()) == 1_024_705  # the ~1M model
    assert lm(torch.zeros(2, 9, dtype=torch.int64)).shape == (2, 9, 65)
    ffn = CharFFN(65, 8, d_model=16, n_blocks=4, activation="silu")
    assert ffn(torch.zeros(5, 8, dtype=torch.int64)).shape == (5, 65)
    assert ResidualFFN(6)(torch.zeros(2, 3, 6)).shape == (2, 3, 6)


@pytest.mark.parametrize("name", ["elu", "smooth_elu", "gelu", "relu", "silu"])
def test_ffn_activation_is_the_registry_entry(name: str) -> None:
    lm = CharTransformer(65, 4, d_model=8, n_blocks=2, n_heads=2, activation=name)
    for block in lm.blocks:
        assert type(block.ffn.act) is type(get_activation(name))
    assert isinstance(CharFFN(65, 2, 8, 1, activation=SmoothELU(0.1)).blocks[0].ffn.act, SmoothELU)


def test_lecun_init_scales() -> None:
    torch.manual_seed(3)
    lm = CharTransformer(65, 8, d_model=256, n_blocks=8, n_heads=4)
    fc1, fc2 = lm.blocks[0].ffn.fc1.weight, lm.blocks[0].ffn.fc2.weight
    assert abs(fc1.std().item() * math.sqrt(256) - 1) < 0.01  # 262k draws: sd of the sd 0.14%
    assert abs(fc2.std().item() * math.sqrt(1024) * math.sqrt(16) - 1) < 0.01
    assert torch.all(lm.blocks[0].ffn.fc1.bias == 0)


def test_errors_are_one_clear_line() -> None:
    with pytest.raises(ValueError, match="divisible by n_heads"):
        CausalSelfAttention(10, 3)
    with pytest.raises(ValueError, match="exceeds the context 4"):
        CharTransformer(65, 4, 8, 1, 2)(torch.zeros(1, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="windows of 3 symbols"):
        CharFFN(65, 3, 8, 1)(torch.zeros(1, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="n_blocks must be an integer >= 1"):
        CharFFN(65, 3, 8, 0)
    with pytest.raises(ValueError, match="init must be one of lecun, torch"):
        CharFFN(65, 3, 8, 1, init="xavier")
    with pytest.raises(ValueError, match=r"width must be in \(0, 1\]"):
        SmoothELU(2.0)


# ---------------------------------------------------------------------------
# the smoothed ELU: closed forms against independent references
# ---------------------------------------------------------------------------


def _mp_expect(g, x: float, s: float) -> mp.mpf:
    """E g(x + s Z) by quadrature on z in [-40, 40] (the rest weighs e^-800), split at 0,
    at the kink of g (z = -x/s) and just below it (where a far tail's mass sits)."""
    kink = -mp.mpf(x) / s
    near = [kink - d for d in (0, 0.05, 0.2, 1, 3)]
    points = sorted({min(max(p, -40), 40) for p in [-40, 0, *near, 40]})
    return mp.quad(lambda z: g(x + s * z) * mp.npdf(z), points)


MP_ELU = (
    lambda y: y if y > 0 else mp.expm1(y),
    lambda y: mp.mpf(1) if y > 0 else mp.exp(y),
    lambda y: mp.mpf(0) if y > 0 else mp.exp(y),
)
XS = [-30.0, -4.0, -1.0, -0.3, -0.01, 0.0, 0.02, 0.25, 1.0, 3.0, 12.0]


@pytest.mark.parametrize("width", [0.25, 0.05])
def test_smooth_elu_is_the_gaussian_smoothing_of_elu(width: float) -> None:
    """f, f', f'' equal E elu^{(n)}(x + sZ) by mpmath quadrature (the definition)."""
    x = torch.tensor(XS, dtype=torch.float64)
    with mp.workdps(20):
        for order, g in enumerate(MP_ELU):
            got = smooth_elu_derivative(x, width, order=order)
            want = torch.tensor([float(_mp_expect(g, v, width)) for v in XS], dtype=torch.float64)
            # float64 rounding of a few terms of size <= max(1, |x|); f(0) cancels 0.5 - 0.49
            err = (got - want).abs()
            assert torch.all(err <= 1e-13 * want.abs() + 4e-16 * (1 + x.abs())), (order, err)


def test_smooth_elu_autograd_uses_the_closed_forms() -> None:
    x = torch.linspace(-12, 12, 241, dtype=torch.float64).requires_grad_(True)
    (g,) = torch.autograd.grad(smooth_elu(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    assert torch.equal(g.detach(), smooth_elu_derivative(x.detach()))
    assert torch.equal(h, smooth_elu_derivative(x.detach(), order=2))
    # and both equal autograd of an independent plain-torch form of f
    xr = x.detach().clone().requires_grad_(True)
    t = xr / 0.25
    plain = (xr * torch.special.ndtr(t) + 0.25 * torch.exp(-t * t / 2) / math.sqrt(2 * math.pi)
             + torch.exp(xr + 0.03125 + torch.special.log_ndtr(-t - 0.25))
             - torch.special.ndtr(-t))  # fmt: skip
    (gr,) = torch.autograd.grad(plain.sum(), xr, create_graph=True)
    (hr,) = torch.autograd.grad(gr.sum(), xr)
    torch.testing.assert_close(g.detach(), gr.detach(), rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(h, hr, rtol=1e-12, atol=1e-14)
    y = torch.randn(7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda u: smooth_elu(u, 0.3), (y,))


def test_smooth_elu_differs_from_elu_by_at_most_0_0221() -> None:
    x = torch.linspace(-6, 6, 120_001, dtype=torch.float64)
    diff = smooth_elu(x) - elu(x)
    assert diff.min() >= -1e-15  # f_s >= ELU (ELU is convex)
    i = int(diff.argmax())
    assert abs(diff[i].item() - 0.02211) < 1e-5 and abs(x[i].item() + 0.242) < 2e-3
    assert diff.max() <= 0.25**2 / 2  # the Taylor bound s^2/2
    assert abs(smooth_elu(torch.tensor(0.0, dtype=torch.float64)).item() - 0.013768) < 1e-6


def test_smooth_elu_second_derivative_is_continuous_where_elus_jumps() -> None:
    x = torch.tensor([-1e-9, 1e-9], dtype=torch.float64)
    dd = smooth_elu_derivative(x, order=2)
    assert abs(dd[0] - dd[1]) < 1e-8 and abs(dd[0] - 0.41403) < 1e-5
    jump = torch.tensor([1.0, 0.0], dtype=torch.float64)  # ELU'' at -1e-9 and +1e-9
    torch.testing.assert_close(elu_derivative(x, order=2), jump, rtol=0, atol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_smooth_elu_low_precision_is_finite_at_the_extremes(dtype: torch.dtype) -> None:
    x = torch.tensor([-1e4, -100.0, -9.0, 0.0, 9.0, 100.0, 6e4], dtype=dtype).requires_grad_(True)
    y = smooth_elu(x)
    y.sum().backward()
    assert y.dtype == dtype and torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    ref = smooth_elu(x.detach().double())
    torch.testing.assert_close(y.double(), ref, rtol=1e-2 if dtype != torch.float32 else 1e-6,
                               atol=1e-6)  # fmt: skip


def test_smooth_elu_gaussian_moments_are_elus_with_the_variance_added() -> None:
    """E f_s(z) = E ELU(z + sZ') for z ~ N(mu, sigma^2): ELU's closed form at sigma^2 + s^2
    (same for f_s'), against the quadrature of elulab.theory over the float64 forms."""
    from elulab.theory import gaussian_moments

    for mu, sigma in [(0.3, 0.8), (-2.0, 0.1), (1.5, 2.0), (0.0, 1e-3)]:
        got = gaussian_moments("smooth_elu", mu, sigma)
        want = gaussian_moments("elu", mu, math.sqrt(sigma**2 + 0.25**2))
        assert got.mean == pytest.approx(want.mean, rel=1e-13, abs=1e-15), (mu, sigma)
        assert got.mean_slope == pytest.approx(want.mean_slope, rel=1e-13, abs=1e-15)
