"""pinn_activations (C9): spikes, problem set-up, the verdict rule on synthetic results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elulab.experiments.pinn_activations import Config, PinnActivations, make_problem, spikes
from elulab.lab.api import RunResult
from elulab.lab.verdicts import key

ACTS = ("elu", "tanh")


def test_spikes_counts_jumps_over_the_running_minimum() -> None:
    assert spikes([], 10.0) == 0 and spikes([5.0], 10.0) == 0
    assert spikes([1.0, 0.01, 0.2, 0.05, 0.09], 10.0) == 1  # 0.2 > 10 x 0.01
    assert spikes([1.0, math.nan, 0.5], 10.0) == 1


def test_point_scale_scales_every_point_set() -> None:
    p = make_problem("burgers", Config(point_scale=0.5))
    assert p.n_domain == 1270 and [c.n for c in p.conditions] == [40, 80]
    assert make_problem("stiff_ode", Config(stiffness=7.0)).info["k"] == 7.0


def _results(bvp_ratio: float, cost_ratio: float, n: int = 4) -> list[RunResult]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        m = {}
        for p in ("linear_exponential", "stiff_ode", "poisson_2d", "burgers"):
            base = 10 ** rng.normal(-2, 0.3)
            noise = 10 ** rng.normal(0, 0.02)
            r = bvp_ratio if p == "linear_exponential" else cost_ratio
            m |= {key(p, "tanh", "err"): base, key(p, "elu", "err"): base / r * noise}
            for a in ACTS:
                m |= {key(p, a, "diverged"): 0.0, key(p, a, "spikes"): 0.0}
                m |= {key(p, a, "err_kink"): 0.1, key(p, a, "d2err_kink"): 0.2}
        out.append(RunResult(metrics=m))
    return out


@pytest.mark.parametrize(
    ("bvp", "cost", "status"),
    [(3.0, 0.5, "supported"), (0.3, 0.5, "not supported"), (1.0, 1.0, "inconclusive")],
)
def test_verdict_status_is_the_bvp_check(bvp: float, cost: float, status: str) -> None:
    cfg = Config(activations=ACTS)
    (v,) = PinnActivations().verdict(cfg, _results(bvp, cost))
    assert v.claim == "C9" and v.status == status
    # the caveat checks are reported: ELU twice as bad as tanh on Poisson and Burgers
    assert ("poisson_2d (the u'' cost)" in v.summary) and ("3 checks, Bonferroni" in v.summary)
    if cost == 0.5:
        assert v.summary.count("(the u'' cost) 0.3") == 2


def test_verdict_needs_two_seeds_and_the_bvp() -> None:
    (v,) = PinnActivations().verdict(Config(activations=ACTS), _results(3.0, 1.0, n=1))
    assert v.status == "inconclusive" and "needs >= 2 seeds" in v.summary
    with pytest.raises(ValueError, match="must include elu and tanh"):
        Config(activations=("elu", "sin")).validate()
