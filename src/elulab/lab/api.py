"""The common interface between experiments and the lab machinery.

An experiment is a class with

* ``name`` (registry key, e.g. ``"rnn_gradient_flow"``), ``title`` and ``claims``
  (e.g. ``("C2",)``);
* ``Config``: a frozen dataclass whose fields all have defaults and JSON-able types
  (``int``, ``float``, ``bool``, ``str``, or ``tuple`` of those);
* ``profiles``: ``{"quick": {...}, "full": {...}}``, overrides of the Config
  defaults; each profile sets ``seeds`` (the number of seeds, >= 5 in ``full``);
* ``run(config, seed, context) -> RunResult``: one seed, all randomness from
  ``seed`` (the lab seeds python, numpy and torch before calling it);
* ``verdict(config, results) -> list[Verdict]``: one verdict per claim, over seeds;
* ``figures(config, results, out_dir) -> list[Figure]`` (optional): PNG files the
  report shows, drawn from the stored results only.

The lab (runner, store, backends, report) knows experiments only through this
module. Nothing here imports an experiment.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Config:
    ...     steps: int = 10
    ...     seeds: int = 2
    >>> class Toy(Experiment):
    ...     name, title, claims = "toy", "A toy", ("C0",)
    ...     Config = Config
    ...     profiles = {"quick": {"seeds": 2}, "full": {"seeds": 5, "steps": 100}}
    ...     def run(self, config, seed, context):
    ...         return RunResult(metrics={"x": float(seed)})
    ...     def verdict(self, config, results):
    ...         return []
    >>> Toy().resolve_config("quick", {"steps": "3"}).steps
    3
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

__all__ = [
    "STATUSES",
    "ConfigError",
    "Experiment",
    "Figure",
    "RunContext",
    "RunResult",
    "Series",
    "Verdict",
    "config_hash",
    "config_to_dict",
]

Status = Literal["supported", "not supported", "mixed", "inconclusive"]
STATUSES: tuple[str, ...] = ("supported", "not supported", "mixed", "inconclusive")
PROFILES: tuple[str, ...] = ("quick", "full")


class ConfigError(ValueError):
    """A profile, config key or value that the experiment does not accept.

    The message is one line naming what was wrong and what is allowed.
    """


@dataclass
class Series:
    """A family of curves sharing an x axis, e.g. gradient norm against time lag.

    Args:
        x: the x values.
        ys: one list of y values per label (same length as ``x``).
        xlabel, ylabel: axis labels.
        logy: draw the y axis on a log scale.
    """

    x: list[float]
    ys: dict[str, list[float]]
    xlabel: str = ""
    ylabel: str = ""
    logy: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Series:
        return cls(**dict(d))


@dataclass
class RunResult:
    """What one (config, seed) run returns.

    Args:
        metrics: scalar results, ``{name: float}``. Verdicts are computed from these.
        series: curves, ``{name: Series}``.
        tables: ``{name: [row dict, ...]}`` with JSON-able cells.
        artifacts: files the run wrote, ``{name: bytes}``; the driver stores them in
            the run's artifact folder (workers may be on other machines).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-able form, without the artifacts."""
        return {
            "metrics": {k: _jsonable_float(v) for k, v in self.metrics.items()},
            "series": {k: s.to_dict() for k, s in self.series.items()},
            "tables": self.tables,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunResult:
        return cls(
            metrics={
                k: (float("nan") if v is None else float(v))
                for k, v in d.get("metrics", {}).items()
            },
            series={k: Series.from_dict(s) for k, s in d.get("series", {}).items()},
            tables=dict(d.get("tables", {})),
        )


def _jsonable_float(v: Any) -> float | None:
    v = float(v)
    return None if v != v or v in (float("inf"), float("-inf")) else v


@dataclass
class Verdict:
    """The verdict on one claim, over seeds.

    Args:
        claim: claim id, e.g. ``"C2"``.
        status: one of ``STATUSES``.
        effect: the effect size (its meaning is given by ``effect_name``).
        ci_low, ci_high: its 95% confidence interval.
        n_seeds: the number of independent seeds behind it.
        summary: one sentence a reader can quote.
        effect_name: what ``effect`` measures, with units.
    """

    claim: str
    status: str
    effect: float
    ci_low: float
    ci_high: float
    n_seeds: int
    summary: str
    effect_name: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"verdict status {self.status!r} is not one of {', '.join(STATUSES)}")

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("effect", "ci_low", "ci_high"):
            d[k] = _jsonable_float(d[k])
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Verdict:
        d = dict(d)
        for k in ("effect", "ci_low", "ci_high"):
            d[k] = float("nan") if d.get(k) is None else float(d[k])
        return cls(**d)


@dataclass
class Figure:
    """A figure file drawn by an experiment's ``figures`` hook.

    Args:
        path: the PNG file (inside the ``out_dir`` the hook was given).
        caption: one or two sentences saying what to look at.
        claim: the claim it illustrates (default: the experiment's first claim).
    """

    path: Path
    caption: str
    claim: str | None = None


@dataclass
class RunContext:
    """What the lab hands to ``Experiment.run``.

    Args:
        workdir: a private scratch directory for this run (deleted afterwards);
            put files to keep in ``RunResult.artifacts``.
        device: ``"cpu"`` or ``"cuda"``.
        data_dir: the data root (see :func:`elulab.data.data_root`), or None for the
            default lookup.
        progress: ``progress(done, total)`` reports progress within a run; may be
            a no-op.
    """

    workdir: Path
    device: str = "cpu"
    data_dir: Path | None = None
    progress: typing.Callable[[float, float], None] = field(default=lambda done, total: None)


class Experiment:
    """Base class of every experiment; see the module docstring for the contract."""

    name: ClassVar[str]
    title: ClassVar[str]
    claims: ClassVar[tuple[str, ...]]
    Config: ClassVar[type]
    profiles: ClassVar[dict[str, dict[str, Any]]]

    # -- the experiment's own code -------------------------------------------------
    def run(self, config: Any, seed: int, context: RunContext) -> RunResult:
        raise NotImplementedError

    def verdict(self, config: Any, results: Sequence[RunResult]) -> list[Verdict]:
        raise NotImplementedError

    def figures(self, config: Any, results: Sequence[RunResult], out_dir: Path) -> list[Figure]:
        """Draw figures from stored results into ``out_dir``; default: none."""
        return []

    # -- config resolution (shared by every experiment) -----------------------------
    def config_fields(self) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(self.Config)}

    def resolve_config(
        self, profile: str = "quick", overrides: Mapping[str, Any] | None = None
    ) -> Any:
        """Return the Config for ``profile`` with ``overrides`` applied and validated.

        String values (from ``--set key=value``) are parsed by the field's type.

        Raises:
            ConfigError: unknown profile or key, or a value of the wrong type.
        """
        if profile not in self.profiles:
            raise ConfigError(
                f"unknown profile {profile!r} for {self.name}; allowed: {', '.join(self.profiles)}"
            )
        fields = self.config_fields()
        values: dict[str, Any] = {}
        for source in (self.profiles[profile], overrides or {}):
            for key, raw in source.items():
                if key not in fields:
                    raise ConfigError(
                        f"unknown config key {key!r} for {self.name}; allowed: {', '.join(sorted(fields))}"
                    )
                values[key] = _coerce(self.name, key, raw, _field_type(self.Config, key))
        config = self.Config(**values)
        check = getattr(config, "validate", None)
        if check is not None:
            try:
                check()
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{self.name}: {e}") from None
        return config


def _field_type(cls: type, key: str) -> Any:
    hints = typing.get_type_hints(cls)
    return hints[key]


def _coerce(exp: str, key: str, raw: Any, tp: Any) -> Any:
    """Convert ``raw`` to ``tp`` (int, float, bool, str, tuple[...] or Optional)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            return None
        return _coerce(exp, key, raw, non_none[0])
    if origin is tuple:
        inner = args[0] if args else str
        if isinstance(raw, str):
            items = [s.strip() for s in raw.split(",") if s.strip()]
        elif isinstance(raw, (list, tuple)):
            items = list(raw)
        else:
            raise ConfigError(f"{exp}: {key} expects a comma-separated list, got {raw!r}")
        return tuple(_coerce(exp, key, item, inner) for item in items)
    try:
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            s = str(raw).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if tp is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if tp is str:
            return str(raw)
    except (TypeError, ValueError):
        name = getattr(tp, "__name__", str(tp))
        raise ConfigError(f"{exp}: {key} expects {name}, got {raw!r}") from None
    return raw


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as a JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_hash(experiment: str, config: Any) -> str:
    """A stable 16-hex-digit hash of (experiment name, config); ``seeds`` excluded.

    The number of seeds does not change what one (config, seed) run computes, so
    raising ``--seeds`` reuses the runs already stored.
    """
    d = config_to_dict(config)
    d.pop("seeds", None)
    blob = json.dumps({"experiment": experiment, "config": d}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
