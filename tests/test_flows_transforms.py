"""Invariants of every bijection in elulab.flows (zuko style) and the ELU-specific contracts.

References used as independent truth: float64 autograd Jacobians
(``torch.autograd.functional.jacobian``, and the per-row Jacobians of
``elulab.flows.bijection_errors``, the one correctness table the C7 experiment reports
too), zuko's bisection inverse (``zuko.transforms.MonotonicTransform``), scipy
quadrature for normalisation.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate
from torch.autograd.functional import jacobian
from torch.distributions import (
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    Normal,
    TransformedDistribution,
)

from elulab.flows import (
    ELEMENTWISE_KINDS,
    AffineCouplingTransform,
    Elementwise,
    ELUClampWarning,
    ELUTransform,
    LeakyReLUTransform,
    LeakySoftplusTransform,
    LinearELUTransform,
    LinearTailELUTransform,
    LULinearTransform,
    bijection_errors,
    bijection_table,
    flow_logdet_errors,
    make_flow,
    newton_inverse,
    random_flow_logdet_errors,
)

D = 4
F64 = torch.float64
EPS64 = torch.finfo(F64).eps


def _elementwise() -> list[torch.distributions.Transform]:
    return [
        ELUTransform(),
        ELUTransform(alpha=0.3),
        ELUTransform(alpha=2.5),
        LinearTailELUTransform(),
        LinearTailELUTransform(alpha=1.7, knee=-0.5),
        LinearELUTransform(),
        LinearELUTransform(alpha=0.5, beta=0.01),
        LeakyReLUTransform(0.1),
        LeakySoftplusTransform(0.1),
        LeakySoftplusTransform(0.7),
    ]


def _multivariate() -> list[torch.distributions.Transform]:
    g = torch.Generator().manual_seed(0)
    lu = LULinearTransform(
        torch.tensor([2, 0, 3, 1]),
        torch.randn(D, D, generator=g, dtype=F64),
        torch.randn(D, D, generator=g, dtype=F64),
        0.3 * torch.randn(D, generator=g, dtype=F64),
    )
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ELU(), torch.nn.Linear(8, 4)).to(F64)
    coupling = AffineCouplingTransform(torch.tensor([True, False, False, True]), net)
    return [lu, coupling]


def _import_zuko():
    """Import zuko without leaving its side effect: it turns torch's default
    ``validate_args`` off for the whole process at import time."""
    before = torch.distributions.Distribution._validate_args
    zuko = pytest.importorskip("zuko")
    torch.distributions.Distribution.set_default_validate_args(before)
    return zuko


ELEMENTWISE = _elementwise()
ALL = ELEMENTWISE + _multivariate()


def _x(t: torch.distributions.Transform, shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return 2.0 * torch.randn(*shape, generator=g, dtype=F64)


@pytest.mark.parametrize("t", ALL, ids=repr)
def test_correctness_table_round_trips_and_log_det(t: torch.distributions.Transform) -> None:
    e = bijection_errors(t, _x(t, (64, D)))
    # float64 on |x| <~ 8: the worst conditioning is ELU's, dx/dy = e^{-x}/alpha <= e^8/0.3,
    # so an x-space error of eps * 1e4 is rounding, not a bug
    assert e["roundtrip_x"] <= 1e4 * EPS64 * 16
    assert e["roundtrip_y_rel"] <= 1e-14  # the backward error: a few roundoffs
    # against autograd (derivative, or the slogdet of each row's D x D Jacobian): the
    # log-dets here are O(1), so a few hundred ulps
    assert e["logdet_err"] <= 1e-12 and e["boundary_fraction"] == 0.0


@pytest.mark.parametrize("t", ALL, ids=repr)
def test_log_det_against_autograd_jacobian(t: torch.distributions.Transform) -> None:
    """The table's reference, cross-checked with ``torch.autograd.functional.jacobian``."""
    x = _x(t, (6, D))
    ladj = t.log_abs_det_jacobian(x, t(x)).detach()
    if t.domain.event_dim == 0:
        ladj = ladj.sum(-1)
    for i in range(x.shape[0]):
        J = jacobian(lambda v: t(v), x[i])
        _, logdet = torch.linalg.slogdet(J)
        # float64, a D x D determinant: agreement to a few hundred ulps of the sum
        assert abs(float(ladj[i]) - float(logdet)) < 1e-12 * (1 + abs(float(logdet)))


class _PaddedELU(ELUTransform):
    """Pyro's mistake: ``log(f'(x) + 1e-8)``."""

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.exp(super().log_abs_det_jacobian(x, y)) + 1e-8)


class _WrongBranchInverse(LinearTailELUTransform):
    """An inverse that switches branch at the wrong point (y < 0 instead of y < y_knee)."""

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.where(y < 0, self.knee + (y - self.y_knee) / self.tail_slope, y)


class _WrongLULogDet(LULinearTransform):
    """A log-det off by the constant 1e-9 (e.g. a forgotten term)."""

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return super().log_abs_det_jacobian(x, y) + 1e-9


def test_correctness_table_catches_broken_bijections() -> None:
    x = _x(None, (64, D))
    padded = bijection_errors(_PaddedELU(1.0), x)
    assert padded["logdet_err"] > 1e-10 and padded["roundtrip_y_rel"] <= 1e-14
    wrong = bijection_errors(_WrongBranchInverse(), x)
    assert wrong["roundtrip_x"] > 0.1 and wrong["roundtrip_y_rel"] > 0.1
    lu = _multivariate()[0]
    off = _WrongLULogDet(lu.perm, lu.lower, lu.upper, lu.log_diag)
    assert bijection_errors(off, x)["logdet_err"] == pytest.approx(1e-9, rel=1e-3)


def test_correctness_table_elementwise_float32_and_float64() -> None:
    """The table the C7 experiment reports: every elementwise kind, both dtypes."""
    g = torch.Generator().manual_seed(0)
    x = 3.0 * torch.randn(5000, generator=g, dtype=F64)
    ts = {k: Elementwise(k, 1.0).transform() for k in ELEMENTWISE_KINDS}
    rows = bijection_table(ts, x)
    assert [(r["bijection"], r["dtype"]) for r in rows] == [
        (k, d) for d in ("float32", "float64") for k in ELEMENTWISE_KINDS
    ]
    for r in rows:
        if r["dtype"] == "float64":  # the verdict's tolerance
            assert r["roundtrip_y_rel"] <= 1e-12 and r["logdet_err"] <= 1e-12
        else:  # float32: a few units of roundoff (1.2e-7)
            assert r["roundtrip_y_rel"] < 1e-6 and r["logdet_err"] < 1e-5
    # ELU's x-space round trip carries e^{-x}: in float32 it is far worse than the tail's
    by = {(r["bijection"], r["dtype"]): r for r in rows}
    assert by["elu", "float32"]["roundtrip_x"] > 100 * by["elu_tail", "float32"]["roundtrip_x"]


def test_correctness_table_leaves_out_the_boundary_and_ignores_a_cache() -> None:
    t = ELUTransform(1.0, cache_size=1)
    x = torch.tensor([-40.0, -1.0, 0.5, 3.0], dtype=F64)  # elu(-40) rounds onto -1
    e = bijection_errors(t, x)
    assert e["boundary_fraction"] == 0.25 and e["roundtrip_x"] < 1e-15
    # a cache would return x itself: the check must see the real inverse
    bad = _WrongBranchInverse(cache_size=1)
    assert bijection_errors(bad, _x(None, (64,)))["roundtrip_x"] > 0.1


def test_flow_log_det_per_layer_and_whole() -> None:
    e = random_flow_logdet_errors(1.0, dim=4, blocks=2, points=2)
    assert e["layer_err"] <= 1e-12 and e["flow_err_over_eps_cond"] <= 1.0
    # a flow with a wrong layer is caught at the layer and in the whole
    flow = make_flow(D, elementwise="elu_tail", blocks=1, hidden=4).double()
    ts = flow.transforms()
    lu = ts[2]
    ts[2] = _WrongLULogDet(lu.perm, lu.lower, lu.upper, lu.log_diag)
    bad = flow_logdet_errors(ts, torch.randn(2, D, dtype=F64))
    assert bad["layer_err"] == pytest.approx(1e-9, rel=1e-3)
    assert bad["flow_err"] == pytest.approx(1e-9, rel=1e-3)


@pytest.mark.parametrize("t", ALL, ids=repr)
def test_shapes_and_batch_dimensions(t: torch.distributions.Transform) -> None:
    x = _x(t, (3, 5, D))
    y = t(x)
    assert y.shape == x.shape and t.inv(y).shape == x.shape
    ladj = t.log_abs_det_jacobian(x, y)
    expected = x.shape if t.domain.event_dim == 0 else x.shape[:-1]
    assert ladj.shape == expected
    # batching does not change the values: the flattened batch gives the same numbers
    flat = x.reshape(-1, D)
    torch.testing.assert_close(t(flat).reshape(x.shape), y, rtol=0, atol=0)


@pytest.mark.parametrize("t", ALL, ids=repr)
def test_gradients_through_the_inverse(t: torch.distributions.Transform) -> None:
    y = t(_x(t, (3, D))).detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: t.inv(v), (y,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("t", ELEMENTWISE, ids=repr)
def test_inverse_gradient_is_reciprocal_slope(t: torch.distributions.Transform) -> None:
    x = _x(t, (200,))
    y = t(x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(t.inv(y).sum(), y)
    slope = torch.exp(t.log_abs_det_jacobian(x, y.detach()))
    torch.testing.assert_close(g * slope, torch.ones_like(g), rtol=1e-10, atol=0)


@pytest.mark.parametrize(
    "t",
    [LinearELUTransform(), LinearELUTransform(0.5, 0.01), LeakySoftplusTransform(0.1)],
    ids=repr,
)
def test_numeric_inverse_against_zuko_bisection(t: torch.distributions.Transform) -> None:
    zuko = _import_zuko()
    ref = zuko.transforms.MonotonicTransform(lambda v: t(v), bound=200.0, eps=1e-12)
    y = torch.linspace(-1.5, 3.0, 101, dtype=F64)
    # bisection stops at |x - root| < 1e-12; Newton's result is within ulps of the root
    torch.testing.assert_close(t.inv(y), ref.inv(y), rtol=0, atol=1e-11)


def test_newton_inverse_refuses_to_return_an_unconverged_value() -> None:
    y = torch.tensor([-50.0], dtype=F64)
    with pytest.raises(RuntimeError, match="did not converge in 1 iterations"):
        newton_inverse(
            torch.exp,
            torch.exp,
            torch.tensor([1e-20], dtype=F64),
            torch.tensor([0.0], dtype=F64),
            max_iter=1,
        )
    assert y.shape == (1,)


# --- ELU's codomain -------------------------------------------------------------------------


def test_codomain_is_greater_than_minus_alpha_not_positive() -> None:
    t = ELUTransform(alpha=2.0)
    assert t.codomain.lower_bound == -2.0
    assert bool(t.codomain.check(torch.tensor(-1.5)))  # Pyro's positive codomain says no
    assert not bool(t.codomain.check(torch.tensor(-2.0)))
    assert t.domain is torch.distributions.constraints.real
    assert t.bijective and t.sign == 1


@pytest.mark.parametrize("alpha", [1.0, 0.25, 3.0])
def test_out_of_codomain_raises_naming_the_bound(alpha: float) -> None:
    t = ELUTransform(alpha=alpha)
    for bad in (-alpha, -alpha - 1.0, float("-inf"), float("nan")):
        with pytest.raises(ValueError, match=rf"> -alpha = {-alpha}"):
            t.inv(torch.tensor([0.5, bad], dtype=F64))


def test_transformed_distribution_validates_support() -> None:
    # validate_args explicitly: importing zuko turns torch's default validation off
    d = TransformedDistribution(Normal(0.0, 1.0), ELUTransform(alpha=1.0), validate_args=True)
    with pytest.raises(ValueError, match="GreaterThan"):
        d.log_prob(torch.tensor(-1.5))
    d2 = TransformedDistribution(Normal(0.0, 1.0), ELUTransform(alpha=1.0), validate_args=False)
    with pytest.raises(ValueError, match=r"-alpha = -1\.0"):
        d2.log_prob(torch.tensor(-1.5))


def test_clamp_mode_counts_and_warns_and_stays_finite() -> None:
    t = ELUTransform(alpha=1.0, clamp=True)
    y = torch.tensor([-3.0, -1.0, 0.5, -0.5], dtype=F64)
    with pytest.warns(ELUClampWarning, match="clamped 2 of 4"):
        x = t.inv(y)
    assert torch.isfinite(x).all() and t.n_clamped == 2
    # the clamped values go to the largest float above -1, so log(1 + y) = log(2^-53)
    assert float(x[0]) == pytest.approx(math.log(2.0**-53), rel=1e-12)
    torch.testing.assert_close(x[2:], torch.tensor([0.5, math.log(0.5)], dtype=F64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t.inv(torch.tensor([0.0]))  # nothing to clamp: no warning
    with pytest.raises(ValueError, match="NaN"):
        t.inv(torch.tensor([float("nan")]))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_density_integrates_to_one(alpha: float) -> None:
    """Quadrature over the image (-alpha, inf): an independent check of log_prob."""
    base = Normal(torch.tensor(0.3, dtype=F64), torch.tensor(1.2, dtype=F64))
    d = TransformedDistribution(base, ELUTransform(alpha))

    def pdf(v: float) -> float:
        return math.exp(float(d.log_prob(torch.tensor(v, dtype=F64))))

    left, _ = integrate.quad(pdf, -alpha, 0.0, limit=200)
    right, _ = integrate.quad(pdf, 0.0, np.inf, limit=200)
    # quad's own error estimate is ~1e-10 here; the image must carry all the mass
    assert left + right == pytest.approx(1.0, abs=1e-9)


def test_log_prob_equals_change_of_variables_by_hand() -> None:
    alpha = 1.5
    base = Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    d = TransformedDistribution(base, ELUTransform(alpha))
    y = torch.tensor([-1.2, -0.1, 0.0, 2.0], dtype=F64)
    x = torch.where(y > 0, y, torch.log1p(y / alpha))
    slope = torch.where(x > 0, 1.0, alpha * torch.exp(x))
    torch.testing.assert_close(d.log_prob(y), base.log_prob(x) - torch.log(slope))


# --- hypothesis: near -alpha, at 0, at large |x| ---------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    alpha=st.floats(0.05, 20.0),
    frac=st.floats(1e-15, 1e-3),
)
def test_inverse_near_minus_alpha(alpha: float, frac: float) -> None:
    y = torch.tensor(-alpha * (1.0 - frac), dtype=F64)
    assume(float(y) > -alpha)
    x = ELUTransform(alpha).inv(y)
    assert math.isfinite(float(x))
    # log(1 + y/alpha) = log(frac) up to the rounding of y (relative 1e-16 of alpha)
    assert float(x) == pytest.approx(math.log(frac), abs=4 * EPS64 / frac + 1e-14)
    torch.testing.assert_close(ELUTransform(alpha)(x), y, rtol=4 * EPS64, atol=0)


@settings(max_examples=60, deadline=None)
@given(x=st.floats(-1e-6, 1e-6), alpha=st.floats(0.05, 20.0))
def test_round_trip_at_zero(x: float, alpha: float) -> None:
    for t in (ELUTransform(alpha), LinearTailELUTransform(alpha), LinearELUTransform(alpha)):
        xt = torch.tensor(x, dtype=F64)
        back = float(t.inv(t(xt)))
        assert back == pytest.approx(x, rel=8 * EPS64, abs=1e-300)


@settings(max_examples=60, deadline=None)
@given(x=st.floats(-1e8, 1e8), alpha=st.floats(0.05, 20.0))
def test_large_inputs(x: float, alpha: float) -> None:
    xt = torch.tensor(x, dtype=F64)
    for t in (LinearTailELUTransform(alpha), LinearELUTransform(alpha), LeakySoftplusTransform()):
        back = float(t.inv(t(xt)))
        assert back == pytest.approx(x, rel=64 * EPS64, abs=1e-9)
        assert math.isfinite(float(t.log_abs_det_jacobian(xt, t(xt))))
    t = ELUTransform(alpha)
    y = t(xt)
    assert math.isfinite(float(t.log_abs_det_jacobian(xt, y)))
    if float(y) > -alpha:
        assert math.isfinite(float(t.inv(y)))
    else:  # e^x underflowed below the roundoff of alpha: y is the boundary, not invertible
        assert x < math.log(EPS64)
        with pytest.raises(ValueError, match="-alpha"):
            t.inv(y)
    # caching keeps the pair, so a drawn sample can still be scored
    tc = t.with_cache(1)
    assert float(tc.inv(tc(xt))) == x


# --- composition ------------------------------------------------------------------------------


def test_composes_with_torch_transforms() -> None:
    t = ComposeTransform(
        [AffineTransform(0.5, 2.0), ELUTransform(1.0), AffineTransform(1.0, 1.0), ExpTransform()]
    )
    x = torch.linspace(-3, 3, 13, dtype=F64)
    y = t(x)
    torch.testing.assert_close(t.inv(y), x, rtol=0, atol=1e-12)
    J = torch.diagonal(jacobian(lambda v: t(v), x))
    torch.testing.assert_close(t.log_abs_det_jacobian(x, y), torch.log(J), rtol=0, atol=1e-12)
    assert t.codomain.lower_bound == 0.0


def test_composes_with_zuko() -> None:
    zuko = _import_zuko()
    transform = zuko.transforms.ComposedTransform(
        zuko.transforms.MonotonicAffineTransform(
            torch.tensor(0.2, dtype=F64), torch.tensor(0.3, dtype=F64)
        ),
        LinearTailELUTransform(),
        zuko.transforms.SoftclipTransform(bound=5.0),
    )
    base = torch.distributions.Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    flow = zuko.distributions.NormalizingFlow(transform, base)
    x = torch.linspace(-4.0, 4.0, 9, dtype=F64)
    z = transform(x)
    J = torch.diagonal(jacobian(lambda v: transform(v), x))
    torch.testing.assert_close(
        flow.log_prob(x), base.log_prob(z) + torch.log(J), rtol=0, atol=1e-12
    )
    # sampling goes through the inverse
    s = flow.sample((100,))
    assert torch.isfinite(s).all()


# --- parameters and plumbing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "err", "needle"),
    [
        (lambda: ELUTransform(alpha=0.0), ValueError, "alpha"),
        (lambda: ELUTransform(alpha="1"), TypeError, "alpha"),
        (lambda: ELUTransform(clamp=1), TypeError, "clamp"),
        (lambda: LinearTailELUTransform(knee=0.5), ValueError, "knee"),
        (lambda: LinearELUTransform(beta=-0.1), ValueError, "beta"),
        (lambda: LeakySoftplusTransform(slope=1.0), ValueError, "slope"),
        (lambda: LeakyReLUTransform(negative_slope=0.0), ValueError, "negative_slope"),
        (
            lambda: AffineCouplingTransform(torch.tensor([True, True]), torch.nn.Identity()),
            ValueError,
            "mask",
        ),
        (
            lambda: LULinearTransform(
                torch.tensor([0, 0]), torch.eye(2), torch.eye(2), torch.zeros(2)
            ),
            ValueError,
            "perm",
        ),
    ],
)
def test_bad_parameters_are_refused(make, err, needle) -> None:
    with pytest.raises(err, match=needle):
        make()


@pytest.mark.parametrize("t", ELEMENTWISE, ids=repr)
def test_with_cache_equality_and_nan_refusal(t: torch.distributions.Transform) -> None:
    tc = t.with_cache(1)
    assert tc == t and hash(tc) == hash(t) and tc._cache_size == 1 and t.with_cache(0) is t
    with pytest.raises(ValueError, match="NaN"):
        t.inv(torch.tensor([0.0, float("nan")], dtype=F64))


@pytest.mark.parametrize("t", _multivariate(), ids=repr)
def test_multivariate_with_cache_equality_and_hash(t: torch.distributions.Transform) -> None:
    # regression: LULinearTransform and AffineCouplingTransform had no with_cache
    tc = t.with_cache(1)
    assert type(tc) is type(t) and tc._cache_size == 1 and t.with_cache(0) is t
    assert tc == t and hash(tc) == hash(t) and tc.with_cache(0) == t
    x = _x(t, (5, D))
    torch.testing.assert_close(tc(x), t(x), rtol=0, atol=0)
    y = tc(x)
    assert tc(x) is y and tc.inv(y) is x  # the cache hands back the pair
    assert t != t.inv and t != ELUTransform()


def test_lu_equality_is_by_value() -> None:
    lu = _multivariate()[0]
    same = LULinearTransform(lu.perm.clone(), lu.lower.clone(), lu.upper.clone(), lu.log_diag)
    assert same == lu and hash(same) == hash(lu)
    other = LULinearTransform(lu.perm, lu.lower, lu.upper, lu.log_diag + 1e-12)
    assert other != lu
    flipped = LULinearTransform(torch.tensor([0, 1, 2, 3]), lu.lower, lu.upper, lu.log_diag)
    assert flipped != lu
    # a coupling layer is equal to one with the same conditioner object only
    net = torch.nn.Linear(1, 2)
    mask = torch.tensor([True, False])
    c1 = AffineCouplingTransform(mask, net)
    assert c1 == AffineCouplingTransform(mask.clone(), net)
    assert c1 != AffineCouplingTransform(mask, torch.nn.Linear(1, 2))
    assert c1 != AffineCouplingTransform(mask, net, scale_bound=2.0)


def test_compose_transform_with_cache_round_trips_and_caches() -> None:
    # regression: ComposeTransform(..., cache_size=1) raised NotImplementedError, because
    # it calls with_cache on every part
    parts = [*_multivariate(), LinearTailELUTransform(), AffineTransform(0.5, 2.0, event_dim=1)]
    t = ComposeTransform(parts, cache_size=1)
    assert all(p._cache_size == 1 for p in t.parts)
    assert t == ComposeTransform(parts)  # the cached parts equal the originals
    x = _x(None, (7, D))
    y = t(x)
    assert t(x) is y and t.inv(y) is x  # cached
    fresh = y.clone()  # not the cached object: a real inverse pass
    torch.testing.assert_close(t.inv(fresh), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(t(t.inv(fresh)), y, rtol=1e-14, atol=1e-14)
    ref = ComposeTransform(parts)
    torch.testing.assert_close(t.log_abs_det_jacobian(x, y), ref.log_abs_det_jacobian(x, y))


def test_cached_flow_scores_its_own_boundary_samples() -> None:
    # ELU outputs rounded onto -alpha cannot be inverted; with a cached composition the
    # drawn sample is scored from the cache (the contract ELUTransform's doc promises)
    t = ComposeTransform([AffineTransform(-40.0, 1.0), ELUTransform(1.0)], cache_size=1)
    z = torch.zeros(3, dtype=F64)
    y = t(z)
    assert bool((y == -1.0).all())
    with pytest.raises(ValueError, match="-alpha"):
        ComposeTransform(t.parts).inv(y.clone())
    assert t.inv(y) is z


def test_elu_equality_and_hash_include_clamp() -> None:
    # regression: ELUTransform(0.5) == ELUTransform(0.5, clamp=True) was True (same hash)
    # though one inverse raises and the other clamps
    plain, clamped = ELUTransform(0.5), ELUTransform(0.5, clamp=True)
    assert plain != clamped and hash(plain) != hash(clamped)
    assert len({plain, clamped, ELUTransform(0.5)}) == 2
    assert clamped == ELUTransform(0.5, clamp=True) and hash(clamped) == hash(
        ELUTransform(0.5, clamp=True)
    )
    assert clamped.with_cache(1).clamp and clamped.with_cache(1) == clamped
    assert repr(clamped) == "ELUTransform(alpha=0.5, clamp=True)"
    assert repr(plain) == "ELUTransform(alpha=0.5)"
    y = torch.tensor([-0.5], dtype=F64)
    with pytest.raises(ValueError, match="-alpha"):
        plain.inv(y)
    with pytest.warns(ELUClampWarning):
        assert torch.isfinite(clamped.with_cache(1).inv(y)).all()


def test_lu_weight_log_det_matches_slogdet() -> None:
    lu = _multivariate()[0]
    _, logdet = torch.linalg.slogdet(lu.weight)
    torch.testing.assert_close(lu.log_abs_det_jacobian(torch.zeros(D, dtype=F64), None), logdet)
    x = _x(lu, (5, D))
    torch.testing.assert_close(lu(x), x @ lu.weight.T)


@pytest.mark.parametrize("x", [19.999, 20.0, 20.001, 40.0])
def test_leaky_softplus_has_no_jump_at_torch_softplus_threshold(x: float) -> None:
    # torch's F.softplus switches to x above 20, a 2e-9 jump that broke the round trip
    t = LeakySoftplusTransform(0.1)
    xt = torch.tensor([x], dtype=F64)
    assert float(t.inv(t(xt))) == pytest.approx(x, rel=8 * EPS64)
    exact = 0.1 * x + 0.9 * math.log1p(math.exp(x)) - 0.9 * math.log(2.0)
    assert float(t(xt)) == pytest.approx(exact, rel=4 * EPS64)
