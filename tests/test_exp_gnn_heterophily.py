"""gnn_heterophily (C8): config checks, the verdict rule on synthetic runs, a user graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch_geometric")

from elulab.cli import app
from elulab.experiments.gnn_heterophily import Config, GnnHeterophily
from elulab.lab.api import ConfigError, RunContext, RunResult
from elulab.lab.verdicts import key

SPEC = "elulab.experiments.gnn_heterophily:GnnHeterophily"
CFG = Config(models=("mlp", "gcn"), placements=("update",), phis=(-1.0, 1.0))
CFG = Config(**{**CFG.__dict__, "activations": ("relu", "elu"), "datasets": ("texas", "cora")})


def _runs(synth: float, real: float, *, relu_texas_mlp: float = 0.8, noise: float = 0.005) -> list:
    """Runs whose ELU - ReLU gain is ``synth`` on the synthetic tasks, ``real`` on texas."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(6):
        m = {key("texas", "margin"): 1 / 37, key("texas", "h"): 0.06, key("cora", "h"): 0.81}
        m |= {key("cora", "margin"): 1 / 497, key("texas", "mlp", "relu"): relu_texas_mlp}
        for parts, gain in ((("sign", "gcn", "update"), synth), (("csbm", -1.0, "gcn", "update"), synth),
                            (("texas", "gcn"), real), (("cora", "gcn"), 0.0)):  # fmt: skip
            base = 0.6 + 0.02 * rng.standard_normal()
            m |= {
                key(*parts, "relu"): base,
                key(*parts, "elu"): base + gain + noise * rng.standard_normal(),
            }
        out.append(RunResult(metrics=m))
    return out


@pytest.mark.parametrize(
    ("synth", "real", "status"),
    [
        (0.1, 0.1, "supported"),
        (-0.1, -0.1, "not supported"),
        (0.1, -0.1, "mixed"),
        (0.03, 0.03, "inconclusive"),  # noisy: every interval holds its margin
    ],
)
def test_verdict_one_case_per_status(synth: float, real: float, status: str) -> None:
    noise = 0.1 if status == "inconclusive" else 0.005
    (v,) = GnnHeterophily().verdict(CFG, _runs(synth, real, noise=noise))
    assert v.status == status and v.claim == "C8"
    assert len(v.checks) == 3  # sign, CSBM phi=-1, texas: one gcn/update check each
    assert v.checks[2].threshold == pytest.approx(1 / 37)  # one texas test node > 0.01
    assert "cora (homophilous control, h=0.81)" in v.summary and v.qualifier == ""


def test_a_small_gain_under_one_test_node_is_not_clear() -> None:
    (v,) = GnnHeterophily().verdict(CFG, _runs(0.1, 0.02))  # 0.02 < 1/37 on texas
    assert v.checks[2].status == "not supported" and v.status == "mixed"


def test_baselines_off_qualify_the_verdict() -> None:
    (v,) = GnnHeterophily().verdict(CFG, _runs(0.1, 0.1, relu_texas_mlp=0.60))
    assert v.qualifier == "baselines off" and "texas mlp 60.0 vs 80.8+-4.8" in v.summary
    (ok,) = GnnHeterophily().verdict(CFG, _runs(0.1, 0.1, relu_texas_mlp=0.75))
    assert ok.qualifier == ""  # 5.8 points off: within 2 published stds (4.75)


def test_bad_datasets_and_data_dir_are_one_line_config_errors(tmp_path: Path) -> None:
    exp = GnnHeterophily()
    with pytest.raises(ConfigError, match="unknown graph 'squirrel'; allowed: texas"):
        exp.resolve_config("smoke", {"datasets": "texas,squirrel"})
    with pytest.raises(ConfigError, match="is not a directory"):
        exp.resolve_config("smoke", {"data_dir": str(tmp_path / "no")})
    with pytest.raises(ConfigError, match=r"graph 'g' not found .*g\.npz"):
        exp.resolve_config("smoke", {"data_dir": str(tmp_path), "datasets": "g"})
    res = CliRunner().invoke(
        app, ["run", SPEC, "--profile", "smoke", "--set", f"data_dir={tmp_path}/x"]
    )
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.output
    assert "data_dir" in res.stderr


def test_runs_on_a_user_graph_with_seed_as_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n, d = 40, tmp_path / "toy"
    d.mkdir()
    y = np.arange(n) % 3
    edges = np.stack([np.arange(n), (np.arange(n) + 1) % n], 1)
    masks = {f"{k}_masks": np.zeros((10, n), bool) for k in ("train", "val", "test")}
    for s in range(10):
        perm = rng.permutation(n)
        for k, idx in zip(masks, np.split(perm, [20, 30]), strict=True):
            masks[k][s, idx] = True
    np.savez(d / "toy.npz", node_features=rng.normal(size=(n, 5)).astype(np.float32),
             node_labels=y, edges=edges, **masks)  # fmt: skip
    exp = GnnHeterophily()
    cfg = exp.resolve_config("smoke", {"data_dir": str(tmp_path), "datasets": "toy"})
    r = exp.run(cfg, 13, RunContext(workdir=tmp_path))
    assert r.tables["real_graphs"][0]["split"] == 3  # seed 13 -> split 13 mod 10
    assert r.metrics[key("toy", "margin")] == pytest.approx(0.1)
    for a in cfg.activations:
        assert 0.0 <= r.metrics[key("toy", "gcn", a)] <= 1.0
    assert key("csbm", -1.0, "gcn", "message", "glu") in r.metrics
    assert key("csbm", -1.0, "mlp", "message", "relu") not in r.metrics  # an MLP has no messages
