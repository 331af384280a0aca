"""Flow models: exact log-likelihood and sampling, support handling, TransformedDistribution."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian
from torch.distributions import ComposeTransform, TransformedDistribution

from elulab.flows import ELEMENTWISE_KINDS, Flow, make_flow
from needs import missing

F64 = torch.float64


def _random_flow(kind: str | None, dim: int, seed: int = 0) -> Flow:
    torch.manual_seed(seed)
    flow = make_flow(dim, elementwise=kind, blocks=2, hidden=8).double()
    with torch.no_grad():  # move every layer away from its identity initialisation
        for p in flow.parameters():
            p.normal_(0.0, 0.3)
    return flow


@pytest.mark.parametrize("kind", [*ELEMENTWISE_KINDS, None])
def test_log_prob_is_change_of_variables_with_full_jacobian(kind: str | None) -> None:
    flow = _random_flow(kind, 3)
    dist = flow()
    assert isinstance(dist, TransformedDistribution)
    t = ComposeTransform(list(dist.transforms))
    z = torch.randn(4, 3, dtype=F64)
    x = t(z).detach()
    lp = flow.log_prob(x).detach()
    for i in range(4):
        J = jacobian(lambda v: t(v), z[i]).detach()
        ref = dist.base_dist.log_prob(z[i]) - torch.linalg.slogdet(J)[1]
        # float64: 4 layers of exp/log/solves; agreement to 1e-10 nats
        assert abs(float(lp[i]) - float(ref)) < 1e-10


def test_two_dimensional_density_integrates_to_one() -> None:
    """Independent check: exp(log_prob) summed over a fine grid of the plane (R -> R variant)."""
    flow = _random_flow("elu_tail", 2, seed=1)
    n, lim = 801, 12.0
    g = torch.linspace(-lim, lim, n, dtype=F64)
    a, b = torch.meshgrid(g, g, indexing="ij")
    with torch.no_grad():
        p = torch.exp(flow.log_prob(torch.stack([a.flatten(), b.flatten()], -1))).reshape(n, n)
    total = float(torch.trapezoid(torch.trapezoid(p, g, dim=1), g))
    # grid step 0.03 over a C1 density (kinks at the ELU knee and at 0): trapezoid error
    # ~1e-4; the mass beyond |x| = 12 is negligible at these scales
    assert total == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("kind", ["elu", "elu_tail", "leaky_softplus"])
def test_samples_are_scored_and_gradients_flow(kind: str) -> None:
    flow = _random_flow(kind, 4)
    s = flow.sample((16,))
    assert s.shape == (16, 4) and torch.isfinite(s).all()
    assert flow.in_support(s).all()  # samples lie in the support by construction
    lp = flow.log_prob(s)
    assert torch.isfinite(lp).all()
    lp.sum().backward()
    grads = [p.grad for p in flow.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_elu_flow_support_is_restricted_and_reported() -> None:
    flow = _random_flow("elu", 2)
    last = flow().transforms[-1]  # the data-side ActNorm; behind it (inverse) sits an ELU
    loc, scale = last.loc.detach(), last.scale.detach()
    # points whose inverse through the ActNorm is -2 (outside ELU's image) or 0.5 (inside)
    outside = torch.stack([loc + scale * torch.tensor([-2.0, 0.5], dtype=F64)])
    inside_pt = torch.stack([loc + scale * torch.tensor([0.5, 0.5], dtype=F64)])
    x = torch.cat([outside, inside_pt])
    inside = flow.in_support(x)
    assert inside.tolist() == [False, True]
    with pytest.raises(ValueError, match="-alpha"):
        flow.log_prob(x[:1])
    assert torch.isfinite(flow.log_prob(x[1:])).all()
    # R -> R flows contain every point
    assert _random_flow("elu_tail", 2).in_support(x).all()


def test_initialize_puts_training_data_inside_elu_image_and_standardises() -> None:
    torch.manual_seed(0)
    x = torch.randn(500, 3) * torch.tensor([1.0, 5.0, 0.2]) + torch.tensor([-4.0, 2.0, 0.0])
    flow = make_flow(3, elementwise="elu", blocks=2, hidden=8)
    flow.initialize(x)
    assert flow.in_support(x).all()
    flow2 = make_flow(3, elementwise=None, blocks=1, hidden=8)
    flow2.initialize(x)
    z = flow2().transforms[-1].inv(x)  # the data-side ActNorm standardises
    torch.testing.assert_close(z.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(3), atol=1e-5, rtol=0)


def test_training_lowers_nll_on_real_two_dimensional_data() -> None:
    from elulab.data import DataNotFoundError, load_htru2

    try:
        X, _ = load_htru2()
    except DataNotFoundError:
        missing("shared/data/htru2 not available")
    x = torch.tensor(X[:2000, [0, 2]], dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0)
    torch.manual_seed(0)
    flow = make_flow(2, elementwise="elu_tail", blocks=2, hidden=16)
    flow.initialize(x)
    before = float(-flow.log_prob(x).mean().detach())
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)
    for _ in range(60):
        loss = -flow.log_prob(x[torch.randint(0, 2000, (256,))]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = float(-flow.log_prob(x).mean().detach())
    # 60 steps move a 2-D flow well below the standardised-Gaussian start (~2.84 nats)
    assert after < before - 0.3


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"dim": 1}, "dim"),
        ({"dim": 3, "blocks": 0}, "blocks"),
        ({"dim": 3, "elementwise": "relu"}, "elementwise kind"),
    ],
)
def test_make_flow_refuses_bad_arguments(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        make_flow(**kwargs)


@pytest.mark.parametrize("coupling", [True, False])
@pytest.mark.parametrize("kind", [*ELEMENTWISE_KINDS, None])
def test_log_prob_is_bit_identical_to_the_transformed_distribution(
    kind: str | None, coupling: bool
) -> None:
    """Flow.log_prob skips the distribution object but must add the same terms in order."""
    torch.manual_seed(3)
    flow = make_flow(3, elementwise=kind, blocks=3, hidden=8, coupling=coupling)
    with torch.no_grad():
        for p in flow.parameters():
            p.normal_(0.0, 0.3)
        x = flow.sample((64,))
        assert torch.equal(flow.log_prob(x), flow().log_prob(x))
        assert torch.equal(flow.log_prob(x, outside="-inf"), flow().log_prob(x))
    with pytest.raises(ValueError, match="NaN"):
        flow.log_prob(torch.full((1, 3), float("nan")))
    with pytest.raises(ValueError, match="outside must be"):
        flow.log_prob(x, outside="drop")  # type: ignore[arg-type]


def test_stack_without_coupling_has_only_the_elementwise_nonlinearity() -> None:
    names = [type(t).__name__ for t in make_flow(4, elementwise="elu_tail", blocks=2,
                                                 coupling=False).transforms()]  # fmt: skip
    assert names == ["AffineTransform"] + 2 * [
        "LULinearTransform", "LinearTailELUTransform", "AffineTransform"
    ]  # fmt: skip
    linear = make_flow(4, elementwise=None, blocks=2, coupling=False)
    assert [type(t).__name__ for t in linear.transforms()] == ["AffineTransform"] + 2 * [
        "LULinearTransform", "AffineTransform"
    ]  # fmt: skip
    assert linear.full_support and not make_flow(4, elementwise="elu", coupling=False).full_support


def test_outside_rows_get_minus_inf_and_a_gap_that_points_back_inside() -> None:
    flow = _random_flow("elu", 2)
    last = flow().transforms[-1]  # the data-side ActNorm; behind it (inverse) sits an ELU
    loc, scale = last.loc.detach(), last.scale.detach()
    u = torch.tensor([[-2.5, 0.5], [-1.0, -3.0], [0.5, 0.5]], dtype=F64)  # seen by the ELU
    x = (loc + scale * u).requires_grad_(True)
    lp, gap = flow.log_prob_and_gap(x)
    assert torch.equal(lp > -torch.inf, flow.in_support(x.detach()))
    assert lp[:2].tolist() == [-torch.inf, -torch.inf] and torch.isfinite(lp[2].detach())
    # the first ELU (data side) sees u: gap = sum of (-1 - u_i) over the entries <= -1;
    # ELU layers further in may add to it (they see whatever the pass hands on)
    gd = gap.detach()
    assert float(gd[0]) >= 1.5 - 1e-12 and float(gd[1]) >= 2.0 - 1e-12 and gd[2] == 0
    # inside rows: the value of log_prob (to rounding: a batch of 1 rounds differently)
    alone = float(flow.log_prob(x[2:].detach())[0].detach())
    assert float(lp[2].detach()) == pytest.approx(alone, rel=1e-14)
    (g,) = torch.autograd.grad(gap.sum(), x)
    # moving an offending coordinate up (along the ActNorm's scale) shrinks the gap
    assert float(g[0, 0]) < 0 and float(g[1, 1]) < 0 and torch.all(g[2] == 0)
