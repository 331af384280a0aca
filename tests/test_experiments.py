"""The checks every registered experiment must pass, parametrised over the registry.

Each experiment's own test file (``tests/test_exp_<name>.py``) tests its science:
mechanism, formulas, verdict logic. This module holds the generic contract of
:mod:`elulab.lab.api` once, for every entry of :data:`elulab.experiments.EXPERIMENTS`:

* registration: name, title, claim ids of the ledger (``CLAIMS.md``), version, paragraph;
* profiles: ``quick``, ``full`` and ``smoke`` resolve; ``full`` has enough seeds;
* Config: every field declared with :func:`elulab.lab.api.param` and a meaning;
  :meth:`Experiment.describe` has one JSON-able row per field;
* a smoke run (profile ``smoke``, 2 seeds) through :func:`elulab.lab.runner.run_experiment`
  on a temporary store: no failed seed, no hook error, one verdict per claim of the
  right shape, and figures that are PNG files in the store.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from elulab import experiments
from elulab.experiments import EXPERIMENTS, get_experiment
from elulab.lab.api import Experiment
from elulab.lab.runner import SweepOutcome, run_experiment
from elulab.lab.stats import STATUSES
from elulab.lab.store import Store
from needs import missing

NAMES = list(EXPERIMENTS)

#: seeds of the full profile: >= 5, or the number of folds where the data set it
#: (README: "full profile (>= 5 seeds, or 4 where the data's own folds set the number)")
FULL_SEEDS = {"snn_uci": 4}
FULL_SEEDS_DEFAULT = 5

SMOKE_SEEDS = 2
#: a smoke run takes a few seconds (1-2 s ideally); this bound leaves room for a busy
#: machine and only catches a "smoke" profile that is not one
SMOKE_BUDGET_S = 60.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _claim_ids() -> set[str]:
    """The claim ids of the ledger bundled with the report (a copy of shared/CLAIMS.md)."""
    text = resources.files("elulab.report").joinpath("CLAIMS.md").read_text(encoding="utf-8")
    ids = set(re.findall(r"^\|\s*(C\d+)\s*\|", text, flags=re.MULTILINE))
    assert ids, "no claim rows found in the bundled CLAIMS.md"
    return ids


CLAIM_IDS = _claim_ids()


def test_every_experiment_module_is_registered() -> None:
    """Each public module of elulab.experiments is in ``_MODULES`` and defines an experiment."""
    package = Path(experiments.__file__).parent
    files = sorted(p.stem for p in package.glob("*.py") if not p.stem.startswith("_"))
    assert sorted(experiments._MODULES) == files, "modules not in _MODULES, or gone"
    defined = {cls.__module__.rpartition(".")[2] for cls in EXPERIMENTS.values()}
    empty = [m for m in experiments._MODULES if m not in defined]
    assert not empty, f"modules of _MODULES that define no Experiment: {empty}"


# -- registration -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_registration(name: str) -> None:
    cls = EXPERIMENTS[name]
    assert issubclass(cls, Experiment)
    assert cls.name == name and re.fullmatch(r"[a-z][a-z0-9_]*", name), name
    assert isinstance(get_experiment(name), cls)
    assert isinstance(cls.title, str) and cls.title.strip(), f"{name}: empty title"
    claims = cls.claims
    assert isinstance(claims, tuple) and claims, f"{name}: claims must be a non-empty tuple"
    assert len(set(claims)) == len(claims), f"{name}: repeated claim in {claims}"
    for claim in claims:
        assert re.fullmatch(r"C[1-9][0-9]*", claim), f"{name}: claim {claim!r} is not 'C<n>'"
        assert claim in CLAIM_IDS, f"{name}: claim {claim} is not in CLAIMS.md"
    assert type(cls.version) is int and cls.version >= 1, f"{name}: version {cls.version!r}"
    doc = sys.modules[cls.__module__].__doc__
    assert doc and len(doc.split()) > 20, f"{name}: the module docstring (its paragraph)"


# -- profiles ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_profiles_resolve(name: str) -> None:
    exp = get_experiment(name)
    for profile in ("quick", "full"):
        assert profile in exp.profiles, f"{name}: no {profile!r} profile"
    for profile in exp.profiles:
        config = exp.resolve_config(profile)
        assert isinstance(config, exp.Config)
        seeds = getattr(config, "seeds", None)
        assert type(seeds) is int and seeds >= 1, f"{name}/{profile}: seeds = {seeds!r}"
    want = FULL_SEEDS.get(name, FULL_SEEDS_DEFAULT)
    full = exp.resolve_config("full").seeds
    assert full >= want, f"{name}: the full profile has {full} seeds, needs >= {want}"


@pytest.mark.parametrize("name", NAMES)
def test_smoke_profile_exists(name: str) -> None:
    exp = get_experiment(name)
    assert "smoke" in exp.profiles, (
        f"{name} has no 'smoke' profile (overrides giving a run of a few seconds that "
        "exercises every code path of run; the registry-wide smoke run uses it)"
    )


# -- Config -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_config_is_a_frozen_dataclass_with_defaults(name: str) -> None:
    cfg_cls = EXPERIMENTS[name].Config
    assert dataclasses.is_dataclass(cfg_cls), f"{name}: Config is not a dataclass"
    assert cfg_cls.__dataclass_params__.frozen, f"{name}: Config is not frozen"
    no_default = [
        f.name
        for f in dataclasses.fields(cfg_cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    assert not no_default, f"{name}: Config fields without a default: {no_default}"
    assert "seeds" in {f.name for f in dataclasses.fields(cfg_cls)}, f"{name}: no seeds field"


@pytest.mark.parametrize("name", NAMES)
def test_every_config_field_has_a_meaning(name: str) -> None:
    """Every field is declared with ``param(default, "meaning with units", ...)``."""
    fields = dataclasses.fields(EXPERIMENTS[name].Config)
    bare = [
        f.name
        for f in fields
        if not isinstance(f.metadata.get("help"), str) or not f.metadata["help"].strip()
    ]
    assert not bare, (
        f"{name}: {len(bare)} of {len(fields)} Config fields have no meaning (declare "
        f"them with elulab.lab.api.param(default, 'meaning')): {', '.join(bare)}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_describe_has_one_row_per_field(name: str) -> None:
    exp = get_experiment(name)
    rows = exp.describe()
    fields = dataclasses.fields(exp.Config)
    assert [r["name"] for r in rows] == [f.name for f in fields]
    for row, f in zip(rows, fields, strict=True):
        for key in ("type", "default", "allowed", "help", *exp.profiles):
            assert key in row, f"{name}: describe() row {f.name} has no {key!r}"
        assert row["help"] == f.metadata.get("help", "")
    json.dumps(rows)  # JSON-able, as `elulab show --json` prints it


# -- the smoke run ----------------------------------------------------------------------


@dataclasses.dataclass
class Smoke:
    exp: Experiment
    out: SweepOutcome
    store: Store
    seconds: float


@pytest.fixture(scope="module", params=NAMES)
def smoke(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    name = request.param
    exp = get_experiment(name)
    if "smoke" not in exp.profiles:
        pytest.fail(f"{name} has no 'smoke' profile yet: cannot run its smoke test")
    store = Store(tmp_path_factory.mktemp(f"smoke-{name}") / "s.sqlite")
    start = time.perf_counter()
    out = run_experiment(exp, store=store, profile="smoke", seeds=SMOKE_SEEDS)
    seconds = time.perf_counter() - start
    if any("DataNotFoundError" in err for err in out.failed.values()):
        store.close()
        missing(f"{name}: the shared data ({next(iter(out.failed.values()))})")
    yield Smoke(exp, out, store, seconds)
    store.close()


def test_smoke_run_completes(smoke: Smoke) -> None:
    out, name = smoke.out, smoke.exp.name
    assert not out.failed, f"{name}: failed seeds: {out.failed}"
    assert out.completed == list(range(SMOKE_SEEDS)), out
    assert out.summary is not None and not out.errors, f"{name}: {out.errors}"
    assert out.summary.seeds == list(range(SMOKE_SEEDS))
    assert smoke.seconds < SMOKE_BUDGET_S, (
        f"{name}: the smoke run took {smoke.seconds:.0f} s; make its profile smaller"
    )
    runs = smoke.store.runs(name, "completed", config_hash=out.config_hash)
    assert sorted(r.seed for r in runs) == list(range(SMOKE_SEEDS))
    for r in runs:
        assert r.result is not None and r.result.metrics, f"{name}: seed {r.seed} has no metrics"


def test_smoke_verdicts_shape(smoke: Smoke) -> None:
    exp, name = smoke.exp, smoke.exp.name
    verdicts = smoke.out.verdicts
    assert sorted(v.claim for v in verdicts) == sorted(exp.claims), (
        f"{name}: one verdict per claim {exp.claims}, got {[v.claim for v in verdicts]}"
    )
    for v in verdicts:
        what = f"{name} {v.claim}"
        assert v.status in STATUSES, f"{what}: status {v.status!r}"
        assert v.n_seeds == SMOKE_SEEDS, f"{what}: n_seeds {v.n_seeds}"
        assert isinstance(v.summary, str) and v.summary.strip(), f"{what}: empty summary"
        assert math.isfinite(v.effect) or v.status == "inconclusive", (
            f"{what}: effect {v.effect} is not finite, yet the status is {v.status!r}"
        )
        if math.isfinite(v.ci_low) and math.isfinite(v.ci_high):
            assert v.ci_low <= v.ci_high, f"{what}: interval [{v.ci_low}, {v.ci_high}]"


def test_smoke_figures_are_pngs(smoke: Smoke) -> None:
    exp, name = smoke.exp, smoke.exp.name
    assert smoke.out.summary is not None
    for fig in smoke.out.summary.figures:
        path = Path(smoke.store.artifacts_dir) / fig["path"]
        assert path.is_file(), f"{name}: figure {fig['path']} is not in the store"
        assert path.suffix == ".png", f"{name}: figure {fig['path']} is not a .png"
        with path.open("rb") as fh:
            assert fh.read(8) == PNG_MAGIC, f"{name}: {fig['path']} is not a PNG file"
        assert fig["caption"].strip(), f"{name}: figure {fig['path']} has no caption"
        assert fig["claim"] in exp.claims, f"{name}: figure for claim {fig['claim']!r}"
