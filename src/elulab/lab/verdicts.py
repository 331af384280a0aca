"""The verdict kit: sub-claim checks, verdicts built from them, metric keys.

A claim is decided by one or more *checks*, each an interval over seeds compared with
a threshold fixed in the experiment's Config before the results:

* :func:`check` ``(label, values, above=t)``: the claim "the mean of ``values`` is
  above ``t``" (or ``below=t``; ``paired=b`` tests ``values - b``), decided by
  :func:`elulab.lab.stats.decide` on a t-interval; it returns a :class:`Check` with a
  status, an :class:`~elulab.lab.stats.Effect` and a sentence;
* :func:`within` (two checks: inside ``(-tol, tol)``), :func:`per_setting` (a claim
  decided per setting: where it holds), :func:`seed_mean` (a metric's mean over seeds,
  for summaries);
* :meth:`Verdict.from_checks` combines checks by one rule
  (:func:`elulab.lab.stats.combine`) and writes the summary from their sentences;
  :meth:`Verdict.inconclusive` is the verdict when the runs cannot decide;
* :func:`key` / :func:`split_key` / :func:`per_seed`: one metric-key convention,
  ``"part/part/part"`` (e.g. ``"mlp/relu/dead_final"``), and the values of one key
  over seeds.

With ``family=m`` a check uses a Bonferroni-adjusted interval (coverage
``1 - (1 - c)/m``), so that ``m`` checks of one claim hold jointly at level ``c``.

Example:
    >>> c1 = check("ReLU dead fraction", [0.20, 0.25, 0.22], above=0.10)
    >>> c2 = check("ELU dead fraction", [0.0, 0.0, 0.0], below=0.01)
    >>> v = Verdict.from_checks("C1", [c1, c2], effect=c1, effect_name="ReLU dead fraction")
    >>> v.status, c1.status, c2.status
    ('supported', 'supported', 'supported')
    >>> c1.sentence
    'ReLU dead fraction 0.223 [0.161, 0.286] > 0.1: supported'
    >>> key("mlp", "relu", "dead_final"), split_key("mlp/relu/dead_final")
    ('mlp/relu/dead_final', ('mlp', 'relu', 'dead_final'))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .stats import STATUSES, Effect, combine, decide, format_number, mean_ci

__all__ = [
    "STATUSES",
    "Check",
    "Effect",
    "Verdict",
    "check",
    "key",
    "per_seed",
    "per_setting",
    "seed_mean",
    "split_key",
    "within",
]

_NAN = float("nan")


def _jsonable_float(v: Any) -> float | None:
    v = float(v)
    return None if v != v or v in (float("inf"), float("-inf")) else v


# -- metric keys ------------------------------------------------------------------------


def key(*parts: Any) -> str:
    """The metric key ``"a/b/c"`` of ``parts`` (each non-empty, without ``/``).

    Numbers are written with ``repr`` of a float where they are floats (``0.1`` ->
    ``"0.1"``), so a key can be rebuilt from a config value.

    Example:
        >>> key("nll", "htru2", "elu"), key("lambda", 0.01)
        ('nll/htru2/elu', 'lambda/0.01')
    """
    if not parts:
        raise ValueError("key needs at least one part")
    out = []
    for p in parts:
        s = repr(float(p)) if isinstance(p, float) else str(p)
        if not s or "/" in s:
            raise ValueError(f"key parts must be non-empty and contain no '/', got {p!r}")
        out.append(s)
    return "/".join(out)


def split_key(k: str) -> tuple[str, ...]:
    """The parts of a metric key (the inverse of :func:`key` on strings)."""
    return tuple(k.split("/"))


def per_seed(results: Sequence[Any], *parts: Any) -> np.ndarray:
    """The metric ``key(*parts)`` of every result (one per seed), as a float64 array.

    Args:
        results: :class:`~elulab.lab.api.RunResult` objects (anything with a
            ``metrics`` dict).
        parts: the key's parts.

    Raises:
        KeyError: a result lacks the key; the message names it and a few keys it has.

    Example:
        >>> from types import SimpleNamespace as R
        >>> per_seed([R(metrics={"a/b": 1.0}), R(metrics={"a/b": 3.0})], "a", "b").tolist()
        [1.0, 3.0]
    """
    k = key(*parts)
    out = []
    for i, r in enumerate(results):
        if k not in r.metrics:
            have = ", ".join(sorted(r.metrics)[:6])
            raise KeyError(f"result {i} has no metric {k!r} (it has: {have}, ...)")
        out.append(float(r.metrics[k]))
    return np.asarray(out, dtype=np.float64)


def seed_mean(results: Sequence[Any], *parts: Any) -> float:
    """The mean of metric ``key(*parts)`` over the results where it is there and finite.

    For summaries and figures (a verdict's checks use :func:`per_seed`, which raises on
    a missing key); NaN when no result has a finite value.

    Example:
        >>> from types import SimpleNamespace as R
        >>> runs = [R(metrics={"a/b": 1.0}), R(metrics={"a/b": float("nan")}), R(metrics={})]
        >>> seed_mean(runs, "a", "b"), seed_mean(runs, "c")
        (1.0, nan)
    """
    k = key(*parts)
    vals = [float(r.metrics[k]) for r in results if k in r.metrics]
    ok = [v for v in vals if np.isfinite(v)]
    return float(np.mean(ok)) if ok else _NAN


# -- checks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One decided sub-claim.

    Args:
        label: what was measured, in words (e.g. ``"ReLU final dead fraction (MLP)"``).
        status: one of :data:`STATUSES`.
        effect: the mean and its interval.
        n: the number of seeds (values) behind it.
        threshold: the pre-registered threshold.
        direction: ``"greater"`` or ``"less"``.
        confidence: the interval's coverage (after any Bonferroni adjustment).
        note: an optional remark appended to the sentence.
    """

    label: str
    status: str
    effect: Effect
    n: int
    threshold: float
    direction: str
    confidence: float = 0.95
    note: str = ""

    @property
    def sentence(self) -> str:
        """``"<label> <value [low, high]> > <threshold>: <status>"``."""
        op = ">" if self.direction == "greater" else "<"
        s = f"{self.label} {self.effect.format()} {op} {format_number(self.threshold)}: {self.status}"
        return f"{s} ({self.note})" if self.note else s

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "status": self.status,
            "effect": [_jsonable_float(v) for v in self.effect],
            "n": self.n,
            "threshold": self.threshold,
            "direction": self.direction,
            "confidence": self.confidence,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Check:
        eff = Effect(*(_NAN if v is None else float(v) for v in d["effect"]))
        return cls(**{**dict(d), "effect": eff})


def check(
    label: str,
    values: Sequence[float] | np.ndarray,
    *,
    above: float | None = None,
    below: float | None = None,
    paired: Sequence[float] | np.ndarray | None = None,
    confidence: float = 0.95,
    family: int = 1,
    note: str = "",
) -> Check:
    """Decide the sub-claim "mean of ``values`` (minus ``paired``) is above/below t".

    .. math:: \\text{supported} \\iff \\bar d - t_{1-\\beta/2,n-1} s/\\sqrt n > t
        \\quad (\\text{above}), \\qquad \\beta = (1-c)/m,

    with :math:`d_i = v_i - b_i` when ``paired`` is given; ``"not supported"`` when the
    interval lies wholly on the other side, ``"inconclusive"`` when it contains ``t``
    or there are fewer than 2 seeds (or any value is not finite).

    Args:
        label: what is measured, in words.
        values: one number per seed.
        above, below: the threshold and the claimed direction; exactly one.
        paired: the other arm, same seeds in the same order (a paired difference).
        confidence: the family-wise coverage ``c``.
        family: the number ``m`` of checks deciding this claim (Bonferroni).
        note: appended to the sentence in parentheses.

    Example:
        >>> check("gain", [1.2, 1.3, 1.25], paired=[1.0, 1.1, 1.05], above=0.0).status
        'supported'
        >>> check("x", [0.5], above=0.0).status
        'inconclusive'
    """
    if (above is None) == (below is None):
        raise ValueError(f"check {label!r}: give exactly one of above= and below=")
    if isinstance(family, bool) or not isinstance(family, int) or family < 1:
        raise ValueError(f"family must be an integer >= 1, got {family!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    x = np.asarray(values, dtype=np.float64).ravel()
    if paired is not None:
        b = np.asarray(paired, dtype=np.float64).ravel()
        if b.shape != x.shape:
            raise ValueError(
                f"check {label!r}: values and paired differ in length ({x.size}, {b.size})"
            )
        x = x - b
    threshold = float(above if above is not None else below)  # type: ignore[arg-type]
    direction = "greater" if above is not None else "less"
    conf = 1.0 - (1.0 - confidence) / family
    n = int(x.size)
    if n == 0:
        return Check(
            label,
            "inconclusive",
            Effect(_NAN, _NAN, _NAN),
            0,
            threshold,
            direction,
            conf,
            note or "no runs",
        )
    if not np.all(np.isfinite(x)):
        bad = int((~np.isfinite(x)).sum())
        eff = Effect(float(np.nanmean(x)) if bad < n else _NAN, _NAN, _NAN)
        return Check(
            label,
            "inconclusive",
            eff,
            n,
            threshold,
            direction,
            conf,
            note or f"{bad} non-finite value(s)",
        )
    eff = mean_ci(x, conf)
    status = decide(eff.low, eff.high, threshold=threshold, direction=direction, n_seeds=n)
    return Check(label, status, eff, n, threshold, direction, conf, note)


def within(label: str, values: Sequence[float] | np.ndarray, tol: float, **kw: Any) -> list[Check]:
    """The sub-claim "the mean of ``values`` is within ``tol`` of 0" as two checks.

    ``check(label, values, above=-tol)`` and ``check(..., below=tol)``: both supported
    means the whole interval lies inside ``(-tol, tol)`` (an equivalence test, TOST
    style); ``kw`` goes to both (``family=``, ``paired=``, ``note=``).

    Example:
        >>> [c.status for c in within("log ratio", [0.02, 0.03, 0.01], 0.1)]
        ['supported', 'supported']
        >>> [c.status for c in within("log ratio", [0.32, 0.33, 0.31], 0.1)]
        ['supported', 'not supported']
    """
    return [check(label, values, above=-tol, **kw), check(label, values, below=tol, **kw)]


def per_setting(groups: Mapping[str, Sequence[Check]]) -> tuple[str, list[str]]:
    """Where a claim decided per setting holds: a sentence, and the settings where it does.

    Each setting's status is :func:`~elulab.lab.stats.combine` of its checks; the
    sentence names every setting with its status and, where it is mixed or
    inconclusive, the checks that are not supported.

    Example:
        >>> cnn = [check("ReLU large (CNN)", [0.2, 0.25, 0.22], above=0.1)]
        >>> mlp = [check("ReLU large (MLP)", [0.02, 0.03, 0.025], above=0.1),
        ...        check("ELU zero (MLP)", [0.0, 0.0, 0.0], below=0.01)]
        >>> per_setting({"CNN": cnn, "MLP": mlp})
        ('CNN supported; MLP mixed: ReLU large (MLP) not supported', ['CNN'])
    """
    parts, holds = [], []
    for name, checks in groups.items():
        status = combine([c.status for c in checks])
        odd = ", ".join(f"{c.label} {c.status}" for c in checks if c.status != "supported")
        parts.append(f"{name} {status}" + (f": {odd}" if status in STATUSES[2:] else ""))
        holds += [name] if status == "supported" else []
    return "; ".join(parts), holds


# -- verdicts ---------------------------------------------------------------------------


@dataclass
class Verdict:
    """The verdict on one claim, over seeds.

    Build it with :meth:`from_checks` or :meth:`inconclusive` rather than by hand.

    Args:
        claim: claim id, e.g. ``"C2"``.
        status: one of :data:`STATUSES`.
        effect: the headline effect size (its meaning is given by ``effect_name``).
        ci_low, ci_high: its 95% confidence interval.
        n_seeds: the number of independent seeds behind it.
        summary: sentences a reader can quote.
        effect_name: what ``effect`` measures, with units.
        checks: the sub-claims that decided it.
        qualifier: a word or two the status needs to be read right, shown beside it
            (e.g. ``"small"`` for a supported effect under the pre-registered minimum
            meaningful size, ``"at our budget"`` where the budget, not the data,
            decides).
    """

    claim: str
    status: str
    effect: float
    ci_low: float
    ci_high: float
    n_seeds: int
    summary: str
    effect_name: str = ""
    checks: list[Check] = dataclasses.field(default_factory=list)
    qualifier: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"verdict status {self.status!r} is not one of {', '.join(STATUSES)}")

    @property
    def label(self) -> str:
        """The status with its qualifier, e.g. ``"supported (small)"``."""
        return f"{self.status} ({self.qualifier})" if self.qualifier else self.status

    @property
    def interval(self) -> Effect:
        """``Effect(effect, ci_low, ci_high)``."""
        return Effect(self.effect, self.ci_low, self.ci_high)

    @classmethod
    def inconclusive(
        cls, claim: str, reason: str, *, n_seeds: int = 0, effect_name: str = ""
    ) -> Verdict:
        """The verdict when the runs cannot decide the claim; ``reason`` says why.

        Example:
            >>> Verdict.inconclusive("C1", "C1 needs runs with relu and elu").status
            'inconclusive'
        """
        return cls(claim, "inconclusive", _NAN, _NAN, _NAN, n_seeds, reason, effect_name)

    @classmethod
    def from_checks(
        cls,
        claim: str,
        checks: Sequence[Check],
        *,
        effect: Check | Effect | None = None,
        effect_name: str = "",
        n_seeds: int | None = None,
        preamble: str = "",
        notes: Iterable[str] = (),
        status: str | None = None,
        qualifier: str = "",
    ) -> Verdict:
        """Combine sub-claim checks by :func:`elulab.lab.stats.combine` into a verdict.

        The summary is ``preamble``, then each check's sentence, then ``notes``.

        Args:
            claim: the claim id.
            checks: the sub-claims (at least one).
            effect: the headline effect (default: the first check's).
            effect_name: what it measures (default: that check's label).
            n_seeds: seeds behind the verdict (default: the largest check's ``n``).
            preamble: a sentence before the checks.
            notes: sentences after them (mechanism checks, context).
            status: override the combined status (e.g. ``"inconclusive"`` when a
                mechanism check failed); say why in ``notes``.
            qualifier: see :class:`Verdict`.
        """
        checks = list(checks)
        if not checks:
            raise ValueError("from_checks needs at least one check")
        head = effect if effect is not None else checks[0]
        eff = head.effect if isinstance(head, Check) else Effect(*head)
        if not effect_name and isinstance(head, Check):
            effect_name = head.label
        if isinstance(head, Check) and abs(head.confidence - 0.95) > 1e-9:
            family = round(0.05 / (1.0 - head.confidence))
            effect_name += (
                f" ({100 * head.confidence:.3g}% interval: Bonferroni over {family} checks)"
            )
        final = status if status is not None else combine([c.status for c in checks])
        parts = [p for p in (preamble.strip(),) if p]
        parts.append("; ".join(c.sentence for c in checks) + ".")
        parts.extend(n.strip() for n in notes if n and n.strip())
        return cls(
            claim,
            final,
            float(eff.value),
            float(eff.low),
            float(eff.high),
            int(n_seeds if n_seeds is not None else max(c.n for c in checks)),
            " ".join(parts),
            effect_name,
            checks,
            qualifier,
        )

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("effect", "ci_low", "ci_high"):
            d[k] = _jsonable_float(d[k])
        d["checks"] = [c.to_json() for c in self.checks]
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Verdict:
        d = dict(d)
        for k in ("effect", "ci_low", "ci_high"):
            d[k] = _NAN if d.get(k) is None else float(d[k])
        d["checks"] = [Check.from_json(c) for c in d.get("checks", [])]
        return cls(**d)
