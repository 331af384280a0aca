"""Tests of the verdict kit (elulab.lab.verdicts) and of Config param() checks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats as sps

from elulab.lab.api import ConfigError, Experiment, RunResult, param
from elulab.lab.stats import STATUSES, Effect, mean_ci
from elulab.lab.verdicts import Check, Verdict, check, key, per_seed, split_key


def test_check_matches_the_t_interval_and_the_decision_rule():
    x = [0.21, 0.25, 0.19, 0.24, 0.22]
    c = check("ReLU dead", x, above=0.1)
    m, s = np.mean(x), np.std(x, ddof=1)
    half = sps.t.ppf(0.975, 4) * s / math.sqrt(5)
    assert c.effect.value == pytest.approx(m, rel=1e-15)
    assert c.effect.low == pytest.approx(m - half, rel=1e-13)
    assert c.status == "supported" and c.n == 5 and c.direction == "greater"
    assert check("ReLU dead", x, above=0.3).status == "not supported"
    assert check("ReLU dead", x, above=0.22).status == "inconclusive"
    assert check("ELU dead", [0.0, 0.001, 0.0], below=0.01).status == "supported"


def test_paired_check_tests_the_differences():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = a - np.array([0.1, 0.12, 0.09, 0.11])
    c = check("a - b", a, paired=b, above=0.0)
    assert c.status == "supported"
    assert tuple(c.effect) == pytest.approx(tuple(mean_ci(a - b)), rel=1e-12)
    # unpaired, the spread of a swamps the difference
    assert check("a", a, above=float(np.mean(b))).status == "inconclusive"
    with pytest.raises(ValueError, match="differ in length"):
        check("x", [1.0, 2.0], paired=[1.0], above=0.0)


def test_family_widens_the_interval_bonferroni():
    x = [0.1, 0.3, 0.2, 0.25]
    one, four = check("x", x, above=0.0), check("x", x, above=0.0, family=4)
    assert four.confidence == pytest.approx(1 - 0.05 / 4)
    assert tuple(four.effect) == pytest.approx(tuple(mean_ci(x, 1 - 0.05 / 4)))
    assert four.effect.low < one.effect.low and four.effect.high > one.effect.high


def test_check_is_inconclusive_without_enough_or_finite_values():
    assert check("x", [1.0], above=0.0).status == "inconclusive"
    nan = check("x", [1.0, math.nan, 2.0], above=0.0)
    assert nan.status == "inconclusive" and "1 non-finite" in nan.sentence
    empty = check("x", [], above=0.0)
    assert empty.status == "inconclusive" and empty.n == 0
    with pytest.raises(ValueError, match="exactly one of above= and below="):
        check("x", [1.0, 2.0])
    with pytest.raises(ValueError, match="family must be"):
        check("x", [1.0, 2.0], above=0.0, family=0)


def test_from_checks_combines_by_one_rule_and_writes_the_summary():
    yes = check("A", [1.0, 1.1, 0.9], above=0.0)
    no = check("B", [-1.0, -1.1, -0.9], above=0.0)
    und = check("C", [1.0, -1.0, 0.5], above=0.0)
    assert Verdict.from_checks("C1", [yes, yes]).status == "supported"
    assert Verdict.from_checks("C1", [no, no]).status == "not supported"
    assert Verdict.from_checks("C1", [yes, no, und]).status == "mixed"
    assert Verdict.from_checks("C1", [yes, und]).status == "inconclusive"
    v = Verdict.from_checks(
        "C1", [yes, no], effect=Effect(0.5, 0.1, 0.9), effect_name="diff",
        preamble="Two checks.", notes=["Mechanism as intended.", ""], status="inconclusive",
    )  # fmt: skip
    assert v.status == "inconclusive" and (v.effect, v.ci_low, v.ci_high) == (0.5, 0.1, 0.9)
    assert v.summary.startswith("Two checks. A ") and v.summary.endswith("Mechanism as intended.")
    assert yes.sentence in v.summary and no.sentence in v.summary
    assert v.n_seeds == 3 and v.effect_name == "diff"
    assert Verdict.from_checks("C1", [yes]).effect_name == "A"
    with pytest.raises(ValueError, match="at least one check"):
        Verdict.from_checks("C1", [])


def test_verdict_json_round_trip_keeps_checks_and_nan():
    c = check("A", [1.0, 1.1, 0.9], above=0.0, note="paired")
    v = Verdict.from_checks("C2", [c])
    back = Verdict.from_json(v.to_json())
    assert back == v and isinstance(back.checks[0], Check)
    q = Verdict.from_checks("C2", [c], qualifier="small")
    assert q.label == "supported (small)" and Verdict.from_json(q.to_json()) == q
    inc = Verdict.inconclusive("C2", "needs relu", n_seeds=2)
    d = inc.to_json()
    assert d["effect"] is None and Verdict.from_json(d).status == "inconclusive"
    # summaries stored before the kit have no "checks"
    old = {k: d[k] for k in d if k != "checks"}
    assert Verdict.from_json(old).checks == []
    with pytest.raises(ValueError, match="is not one of"):
        Verdict("C1", "proven", 0.0, 0.0, 0.0, 1, "")
    assert set(STATUSES) == {"supported", "not supported", "mixed", "inconclusive"}


def test_metric_keys():
    assert key("mlp", "relu", "dead_final") == "mlp/relu/dead_final"
    assert key("lambda", 0.01, 3) == "lambda/0.01/3"
    assert split_key(key("a", "b")) == ("a", "b")
    with pytest.raises(ValueError, match="contain no '/'"):
        key("a/b")
    with pytest.raises(ValueError, match="at least one part"):
        key()
    rs = [SimpleNamespace(metrics={"a/b": 1.0}), SimpleNamespace(metrics={"a/b": 2.0})]
    assert per_seed(rs, "a", "b").tolist() == [1.0, 2.0]
    with pytest.raises(KeyError, match="no metric 'a/c'"):
        per_seed(rs, "a", "c")


def test_effect_formatting():
    assert Effect(0.148, 0.116, 0.179).format() == "0.148 [0.116, 0.179]"
    assert Effect(0.136, 0.106, 0.166).format(signed=True) == "+0.136 [+0.106, +0.166]"
    assert Effect(2.0, math.nan, math.nan).format() == "2 (one value, no interval)"
    assert not Effect(0.0, -1.0, 1.0).excludes(0.0) and Effect(2.0, 1.0, 3.0).excludes(0.0)


# -- Config param() checks ---------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    seeds: int = param(2, "independent seeds", ge=1)
    rate: float = param(0.1, "dropout rate", ge=0.0, lt=1.0)
    acts: tuple[str, ...] = param(
        ("relu", "elu"), "activations", choices=("relu", "elu", "selu"), nonempty=True
    )
    mode: str = param("pre", "block kind", choices=("pre", "post"))


class _Exp(Experiment):
    name, title, claims = "toy_params", "Toy", ("C0",)
    Config = _Config
    profiles = {"quick": {"seeds": 2}, "full": {"seeds": 5, "rate": 0.05}}  # noqa: RUF012

    def run(self, config, seed, context):
        return RunResult()

    def verdict(self, config, results):
        return []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"seeds": "0"}, "toy_params: seeds must be >= 1, got 0"),
        ({"rate": "1.0"}, "toy_params: rate must be < 1, got 1.0"),
        ({"rate": "-0.1"}, "toy_params: rate must be >= 0, got -0.1"),
        (
            {"acts": "relu,swish"},
            "toy_params: each item of acts must be one of relu, elu, selu, got 'swish'",
        ),
        ({"acts": ""}, "toy_params: acts must be non-empty, got ()"),
        ({"mode": "mid"}, "toy_params: mode must be one of pre, post, got 'mid'"),
    ],
)
def test_param_checks_name_the_field_the_rule_and_the_value(overrides, message):
    with pytest.raises(ConfigError) as e:
        _Exp().resolve_config("quick", overrides)
    assert str(e.value) == message


def test_param_accepts_good_values_and_describe_lists_every_field():
    c = _Exp().resolve_config("full", {"acts": "selu", "mode": "post"})
    assert (c.seeds, c.rate, c.acts, c.mode) == (5, 0.05, ("selu",), "post")
    rows = {r["name"]: r for r in _Exp().describe()}
    assert list(rows) == ["seeds", "rate", "acts", "mode"]
    assert rows["rate"] == {
        "name": "rate", "type": "float", "default": 0.1, "quick": 0.1, "full": 0.05,
        "allowed": ">= 0, < 1", "help": "dropout rate",
    }  # fmt: skip
    assert rows["acts"]["allowed"] == "non-empty, one of relu, elu, selu"
    assert rows["acts"]["default"] == ["relu", "elu"]


def test_a_bonferroni_headline_says_its_level():
    c = check("gap", [0.1, 0.3, 0.2, 0.25], above=0.0, family=10)
    v = Verdict.from_checks("C3", [c], effect=c, effect_name="log10 ratio")
    assert v.effect_name == "log10 ratio (99.5% interval: Bonferroni over 10 checks)"
    plain = check("gap", [0.1, 0.3, 0.2, 0.25], above=0.0)
    assert Verdict.from_checks("C3", [plain], effect=plain, effect_name="x").effect_name == "x"
