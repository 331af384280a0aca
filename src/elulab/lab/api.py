"""The common interface between experiments and the lab machinery.

An experiment is a class with

* ``name`` (registry key, e.g. ``"rnn_gradient_flow"``), ``title`` and ``claims``
  (e.g. ``("C2",)``);
* ``version``: an integer (default 1) raised whenever a change to the code changes
  what a run computes; it enters :func:`config_hash`, so a new version never reuses
  runs stored by an old one;
* ``Config``: a frozen dataclass whose fields all have defaults and JSON-able types
  (``int``, ``float``, ``bool``, ``str``, or ``tuple`` of those), each declared with
  :func:`param` (its meaning and its allowed values, checked on every resolution);
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
    ...     steps: int = param(10, "optimiser steps", ge=1)
    ...     seeds: int = param(2, "independent seeds", ge=1)
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
    >>> Toy().resolve_config("quick", {"steps": "0"})
    Traceback (most recent call last):
    ...
    elulab.lab.api.ConfigError: toy: steps must be >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .stats import STATUSES
from .verdicts import Verdict

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
    "param",
]

PROFILES: tuple[str, ...] = ("quick", "full")


class ConfigError(ValueError):
    """A profile, config key or value that the experiment does not accept.

    The message is one line naming what was wrong and what is allowed.
    """


def param(
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    nonempty: bool = False,
) -> Any:
    """A Config field with its meaning and its allowed values.

    The checks apply to the value, or to each item of a tuple; they run whenever a
    config is resolved, and a violation raises :class:`ConfigError` as
    ``"<experiment>: <field> must be <rule>, got <value>"``.

    Args:
        default: the default value (tuples for sequences).
        help: what the field means, with units (shown by ``elulab show``).
        choices: the allowed values.
        ge, gt, le, lt: bounds (>=, >, <=, <).
        nonempty: a tuple field must have at least one item.

    Example:
        >>> from dataclasses import dataclass, fields
        >>> @dataclass(frozen=True)
        ... class C:
        ...     rate: float = param(0.1, "dropout rate", ge=0.0, lt=1.0)
        >>> fields(C)[0].metadata["help"]
        'dropout rate'
    """
    meta = {
        "help": help,
        "choices": None if choices is None else tuple(choices),
        "ge": ge,
        "gt": gt,
        "le": le,
        "lt": lt,
        "nonempty": nonempty,
    }
    return field(default=default, metadata=meta)


def _rule(meta: Mapping[str, Any]) -> list[tuple[str, typing.Callable[[Any], bool]]]:
    rules: list[tuple[str, typing.Callable[[Any], bool]]] = []
    if meta.get("choices") is not None:
        allowed = meta["choices"]
        rules.append((f"one of {', '.join(map(str, allowed))}", lambda v: v in allowed))
    for op, word, fn in (
        ("ge", ">=", lambda v, b: v >= b),
        ("gt", ">", lambda v, b: v > b),
        ("le", "<=", lambda v, b: v <= b),
        ("lt", "<", lambda v, b: v < b),
    ):
        bound = meta.get(op)
        if bound is not None:
            rules.append((f"{word} {bound:g}", lambda v, b=bound, f=fn: v is not None and f(v, b)))
    return rules


def describe_rule(f: dataclasses.Field) -> str:
    """The allowed values of a Config field, in words (empty when unrestricted)."""
    words = [w for w, _ in _rule(f.metadata)]
    if f.metadata.get("nonempty"):
        words.insert(0, "non-empty")
    return ", ".join(words)


def check_config(exp: str, config: Any) -> None:
    """Check every field of ``config`` against its :func:`param` rules.

    Raises:
        ConfigError: ``"<exp>: <field> must be <rule>, got <value>"``.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        rules = _rule(f.metadata)
        items = value if isinstance(value, tuple) else (value,)
        if isinstance(value, tuple) and f.metadata.get("nonempty") and not value:
            raise ConfigError(f"{exp}: {f.name} must be non-empty, got ()")
        for item in items:
            for words, ok in rules:
                try:
                    good = bool(ok(item))
                except TypeError:
                    good = False
                if not good:
                    what = f"each item of {f.name}" if isinstance(value, tuple) else f.name
                    raise ConfigError(f"{exp}: {what} must be {words}, got {item!r}")


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
        d = dict(d)
        nan = float("nan")
        d["x"] = [nan if v is None else v for v in d.get("x", [])]
        d["ys"] = {k: [nan if v is None else v for v in ys] for k, ys in d.get("ys", {}).items()}
        return cls(**d)


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
        """JSON-able form, without the artifacts.

        Non-finite floats anywhere (metrics, series values, table cells) become ``null``
        (read back as nan in metrics and series): a diverged run's nan must never make
        a whole run unstorable.
        """
        return {
            "metrics": {k: _jsonable_float(v) for k, v in self.metrics.items()},
            "series": {k: _finite_or_null(s.to_dict()) for k, s in self.series.items()},
            "tables": _finite_or_null(self.tables),
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


def _finite_or_null(obj: Any) -> Any:
    """``obj`` with every non-finite float (nested in dicts, lists, tuples) as None."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v) for v in obj]
    return obj


def _jsonable_float(v: Any) -> float | None:
    v = float(v)
    return None if v != v or v in (float("inf"), float("-inf")) else v


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
    version: ClassVar[int] = 1
    #: optional packages a run needs: import name -> (display name, elulab extra); a
    #: missing one makes resolving a config fail with one line naming the extra
    requires: ClassVar[dict[str, tuple[str, str]]] = {}

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
        check_config(self.name, config)
        for module, (label, extra) in self.requires.items():
            if importlib.util.find_spec(module) is None:
                raise ConfigError(
                    f"{self.name}: needs {label}: pip install 'elulab[{extra}]' (make setup does)"
                )
        check = getattr(config, "validate", None)
        if check is not None:
            try:
                check()
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{self.name}: {e}") from None
        return config

    def describe(self) -> list[dict[str, Any]]:
        """One row per Config field: name, type, default, quick and full values, meaning.

        The values are JSON-able (tuples as lists); ``allowed`` states the field's rule.
        """
        hints = typing.get_type_hints(self.Config)
        rows = []
        for f in dataclasses.fields(self.Config):
            tp = hints[f.name]
            row: dict[str, Any] = {
                "name": f.name,
                "type": getattr(tp, "__name__", str(tp))
                if typing.get_origin(tp) is None
                else str(tp),
                "default": _jsonable(f.default),
            }
            for prof, over in self.profiles.items():
                row[prof] = _jsonable(over.get(f.name, f.default))
            row["allowed"] = describe_rule(f)
            row["help"] = f.metadata.get("help", "")
            rows.append(row)
        return rows


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v))


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


def config_hash(experiment: str, config: Any, version: int = 1) -> str:
    """A stable 16-hex-digit hash of (experiment name, code version, config).

    ``seeds`` is excluded: the number of seeds does not change what one (config, seed)
    run computes, so raising ``--seeds`` reuses the runs already stored. The
    experiment's ``version`` is included: runs of an older version are never reused.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class C:
        ...     steps: int = 3
        >>> config_hash("toy", C(), 1) == config_hash("toy", C(), 2)
        False
    """
    d = config_to_dict(config)
    d.pop("seeds", None)
    blob = json.dumps({"experiment": experiment, "version": version, "config": d}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
