"""Tests of the C4 experiment (pre- vs post-activation ResNets): mechanism and verdict logic."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from elulab.experiments.resnet_preact import Config, ResNetPreact, scan_one
from elulab.lab.api import ConfigError, RunResult
from elulab.lab.verdicts import key

CFG = Config(scan_depths=(1, 200), train_depths=(20, 56))


def test_chain_predicts_the_identity_path_and_mean_field_overstates_it() -> None:
    """A wide post-activation net with BN: the chain prediction matches the measured
    identity-path gain to 0.05 decades; the layer-independent product decays faster."""
    cfg = Config(scan_width=256, scan_batch=64, chains=20000)
    images = torch.randn(64, 784, generator=torch.Generator().manual_seed(0))
    row = scan_one(cfg, "elu", "batch", 30, images, seed=3)
    assert row["pre/identity"] == 0.0 and row["post/identity"] < -0.2
    assert abs(row["post/chain"] - row["post/identity"]) < 0.05
    assert row["post/mf"] < row["post/identity"] - 0.3


def _results(pre: float, post_diff: float, ident: float, acc_diff: float, seeds: int = 5,
             noise: float = 0.02) -> list[RunResult]:  # fmt: skip
    rng, out = np.random.default_rng(0), []
    for _ in range(seeds):
        m = {}
        for act, norm in itertools.product(CFG.activations, CFG.norms):
            e = rng.normal(0, noise, 4)
            m[key("init", act, norm, "pre", 1, "gain")] = 0.1
            m[key("init", act, norm, "pre", 200, "gain")] = pre + e[0]
            m[key("init", act, norm, "post", 1, "gain")] = 0.1
            m[key("init", act, norm, "post", 200, "gain")] = 0.1 + post_diff + e[1]
            for k in ("identity", "mf", "chain"):
                m[key("init", act, norm, "post", 200, k)] = ident + e[2]
        for act, d in itertools.product(CFG.activations, CFG.train_depths):
            base = 0.95 + rng.normal(0, 0.002)
            m[key("train", act, "pre", d, "test_acc")] = base + acc_diff / 200
            m[key("train", act, "post", d, "test_acc")] = base - acc_diff / 200
        out.append(RunResult(metrics=m))
    return out


@pytest.mark.parametrize(
    ("args", "status"),
    [
        ((0.2, -1.0, -1.0, 2.0), "supported"),
        ((-1.0, 1.0, 0.0, -2.0), "not supported"),
        ((1.5, 1.5, -0.6, -0.5), "mixed"),  # the pattern measured with BN
        ((-0.3, -0.3, -0.3, 0.0), "inconclusive"),  # every value on its threshold
    ],
)
def test_verdict_statuses(args: tuple, status: str) -> None:
    (v,) = ResNetPreact().verdict(CFG, _results(*args))
    assert v.status == status and v.claim == "C4"
    assert len(v.checks) == 3 * 4 + 2
    assert all(abs(c.confidence - (1 - 0.05 / 14)) < 1e-12 for c in v.checks)  # Bonferroni


def test_verdict_per_setting_and_notes() -> None:
    """BN contradicts the decay, no norm supports it: the summary names each setting."""
    res = _results(0.2, -1.0, -1.0, 2.0)
    for r in res:
        for act in CFG.activations:
            r.metrics[key("init", act, "batch", "post", 200, "gain")] = 1.6
    (v,) = ResNetPreact().verdict(CFG, res)
    assert v.status == "mixed"
    assert "init elu/none supported;" in v.summary and "init elu/batch mixed;" in v.summary
    assert "chain" in v.summary and "Test accuracy % (relu) by layers: 20:" in v.summary


def test_one_seed_is_inconclusive() -> None:
    (v,) = ResNetPreact().verdict(CFG, _results(0.2, -1.0, -1.0, 2.0, seeds=1))
    assert v.status == "inconclusive"


def test_config_rejects_depths_that_are_not_6n_plus_2() -> None:
    exp = ResNetPreact()
    with pytest.raises((ConfigError, ValueError), match="6n\\+2"):
        exp.resolve_config("quick", {"train_depths": "21"})
