"""ffn_smoothness (C6): the gradient-spread mechanism and the verdict rule, one case per status."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch

from elulab.data import load_tinyshakespeare
from elulab.diagnostics import gradient_cv, layer_gradient_variance
from elulab.experiments.ffn_smoothness import ARCHS, PHASES, FFNSmoothness, _cv_probe, _scan, _task
from elulab.lab.api import ConfigError, RunResult
from elulab.lab.verdicts import key
from elulab.nn import CharFFN

EXP = FFNSmoothness()
CFG = EXP.resolve_config("full")
DEEP = max(CFG.depths)


def _results(log_cv: dict[str, float], lm: dict[str, float], noise: float = 0.02, n: int = 6):
    """Synthetic runs: log CV per activation (every setting), LM losses, seed noise."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        m = {}
        for arch in ARCHS:
            for phase in PHASES:
                for act in CFG.activations:
                    m[key(arch, act, DEEP, phase)] = math.exp(log_cv[act] + noise * rng.normal())
        for act in CFG.activations:
            m[key("lm", act, "val_loss")] = lm[act] + noise * rng.normal()
        out.append(RunResult(metrics=m))
    return out


BASE = {"elu": 0.5, "smooth_elu": 0.5, "gelu": 0.5, "relu": 0.9, "silu": 0.4}
LM = {"elu": 2.0, "smooth_elu": 2.0, "gelu": 1.95, "relu": 2.1, "silu": 1.96}


@pytest.mark.parametrize(
    ("cvs", "status"),
    [
        ({"gelu": 0.2, "smooth_elu": 0.25}, "supported"),  # gap 0.3, the control closes 0.25
        ({"gelu": 0.2, "smooth_elu": 0.5}, "mixed"),  # GELU steadier, the control is not
        ({"gelu": 0.7, "smooth_elu": 0.5}, "not supported"),  # ELU steadier than GELU
        ({"gelu": 0.52}, "not supported"),  # a gap inside the 0.05 margin, decided
    ],
)
def test_verdict_statuses(cvs: dict[str, float], status: str) -> None:
    (v,) = EXP.verdict(CFG, _results(BASE | cvs, LM))
    assert v.claim == "C6" and v.status == status, v.summary
    assert len(v.checks) == 2 * len(ARCHS) * len(PHASES) + 2
    assert "Bonferroni over 10 checks" in v.effect_name


def test_verdict_inconclusive_with_noisy_seeds() -> None:
    (v,) = EXP.verdict(CFG, _results(BASE | {"gelu": 0.3, "smooth_elu": 0.35}, LM, noise=0.5))
    assert v.status == "inconclusive"
    assert EXP.verdict(CFG, [])[0].status == "inconclusive"


def test_lm_checks_are_reported_but_do_not_decide() -> None:
    bad_lm = LM | {"gelu": 3.0}  # GELU's LM far worse: reported, the status unchanged
    (v,) = EXP.verdict(CFG, _results(BASE | {"gelu": 0.2, "smooth_elu": 0.25}, bad_lm))
    assert v.status == "supported"
    lm = [c for c in v.checks if c.label.startswith("LM")]
    assert [c.status for c in lm] == ["not supported", "inconclusive"]


def test_control_attribution_needs_more_than_the_share() -> None:
    """B: the control must close more than attribution_share (0.5) of the gap."""
    (v,) = EXP.verdict(CFG, _results(BASE | {"gelu": 0.1, "smooth_elu": 0.35}, LM))  # 0.375
    b = [c for c in v.checks if "control" in c.label]
    assert v.status == "mixed" and all(c.status == "not supported" for c in b)


def test_probe_is_the_variance_of_each_w1_gradient() -> None:
    torch.manual_seed(0)
    model = CharFFN(65, 4, d_model=8, n_blocks=3, activation="smooth_elu").double()
    xy = (torch.randint(0, 65, (32, 4)), torch.randint(0, 65, (32,)))
    v = _cv_probe(model, xy)
    torch.nn.functional.cross_entropy(model(xy[0]), xy[1]).backward()
    want = [b.ffn.fc1.weight.grad.var(unbiased=False).item() for b in model.blocks]
    np.testing.assert_allclose(v, want, rtol=1e-12)
    assert all(b.ffn.fc1.weight.grad is not None for b in model.blocks)  # backward's, untouched
    assert gradient_cv(v) == pytest.approx(np.std(want) / np.mean(want), rel=1e-12)
    assert gradient_cv([2.0, 2.0, 2.0]) == 0.0
    with pytest.raises(ValueError, match="needs >= 2 non-negative variances"):
        gradient_cv([1.0])
    w = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
    assert layer_gradient_variance((w**2).sum(), [w])[0] == pytest.approx(np.var([2, 4, 8]))


def test_scan_pairs_weights_across_activations() -> None:
    cfg = EXP.resolve_config("smoke")
    corpus = load_tinyshakespeare()
    probe = torch.linspace(0, len(corpus.val) - 20, cfg.probe_batch).long()
    data = types.SimpleNamespace(train=corpus.train, val=corpus.val, probe=probe)
    x, y = _task("ffn", cfg, corpus.val, probe)
    assert x.shape == (cfg.probe_batch, cfg.ffn_context) and y.shape == (cfg.probe_batch,)
    x, y = _task("transformer", cfg, corpus.val, probe)
    assert x.shape == y.shape == (cfg.probe_batch // cfg.tf_context, cfg.tf_context)
    rows = {a: _scan(cfg, "transformer", 3, a, data, seed=4) for a in ("elu", "smooth_elu")}
    for a, row in rows.items():
        assert row["v0"].shape == (3,) and math.isfinite(row["init"]) and row["init"] >= 0, a
        assert math.isfinite(row["train"]) and math.isfinite(row["loss"])
    # same weights, activations within 0.022 of each other: close but not equal v_l
    ratio = rows["elu"]["v0"] / rows["smooth_elu"]["v0"]
    assert np.all(np.abs(np.log(ratio)) < 0.5) and not np.allclose(ratio, 1.0, rtol=1e-9)


def test_config_rules() -> None:
    with pytest.raises(ConfigError, match="must include elu, gelu and smooth_elu"):
        EXP.resolve_config("quick", {"activations": "elu,gelu"})
    with pytest.raises(ConfigError, match="must divide width"):
        EXP.resolve_config("quick", {"heads": "3"})
    with pytest.raises(ConfigError, match="attribution_share must be < 1"):
        EXP.resolve_config("quick", {"attribution_share": "1.0"})
