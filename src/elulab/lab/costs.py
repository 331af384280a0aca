"""The lab's cost: how long each experiment's profile takes, read from the stored runs.

For each (experiment, profile) the cost is taken from the runs of its latest config
(the one summarised last) and the seeds of that summary:

* ``serial_s``: the sum of the runs' durations, what one worker takes;
* ``wall_s``: the length of the union of the runs' ``[started_at, finished_at]``
  intervals, so runs that overlapped (``--workers 2``) count once and a gap between
  seeds run on different days does not count at all;
* ``workers``: the most runs that were in flight at the same time;
* ``mean_s``: serial seconds per completed seed.

A profile's total adds the experiments up (``elulab reproduce`` runs them one after
another). Targets: the quick profile of the whole lab under :data:`QUICK_TARGET_S`
of wall time (after setup), every experiment's full profile under
:data:`FULL_TARGET_S` on 2 cores. :func:`costs_markdown` writes the table of the
docs, between :data:`BEGIN_MARKER` and :data:`END_MARKER`
(:func:`replace_between_markers`), so it is generated, never typed.

Example:
    >>> from types import SimpleNamespace as Run
    >>> runs = [Run(seed=0, started_at=0.0, finished_at=10.0, duration_s=10.0),
    ...         Run(seed=1, started_at=5.0, finished_at=15.0, duration_s=10.0)]
    >>> c = run_cost(runs, experiment="toy", profile="full")
    >>> c.seeds, c.serial_s, c.wall_s, c.workers, format_duration(c.wall_s)
    (2, 20.0, 15.0, 2, '15 s')
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "FULL_TARGET_S",
    "QUICK_TARGET_S",
    "CostTotal",
    "ExperimentCost",
    "between_markers",
    "costs_markdown",
    "format_duration",
    "max_overlap",
    "merge_costs",
    "parse_costs_markdown",
    "parse_duration",
    "profile_total",
    "profiles_of",
    "replace_between_markers",
    "run_cost",
    "store_costs",
    "target_cell",
    "total_target_cell",
    "union_length",
]

#: the quick profile of the whole lab, wall seconds after setup
QUICK_TARGET_S = 300.0
#: the full profile of each experiment, wall seconds on 2 cores
FULL_TARGET_S = 5400.0
BEGIN_MARKER = "<!-- costs:begin -->"
END_MARKER = "<!-- costs:end -->"
_PROFILE_ORDER = ("quick", "full")


def _intervals(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for a, b in intervals:
        a, b = float(a), float(b)
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"a run interval must be finite, got [{a}, {b}]")
        out.append((a, max(a, b)))
    return sorted(out)


def union_length(intervals: Iterable[tuple[float, float]]) -> float:
    """The length of the union of ``[start, end]`` intervals (an end before its start
    counts as an empty interval).

    Example:
        >>> union_length([(0, 10), (5, 15)]), union_length([(0, 1), (100, 102)]), union_length([])
        (15.0, 3.0, 0.0)
    """
    total, end = 0.0, -math.inf
    for a, b in _intervals(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one time (touching intervals do not overlap).

    Example:
        >>> max_overlap([(0, 10), (5, 15), (10, 20)]), max_overlap([])
        (2, 0)
    """
    events = []
    for a, b in _intervals(intervals):
        events += [(a, 1), (b, -1)]
    events.sort()  # at equal times an end (-1) comes before a start (+1)
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def format_duration(seconds: float) -> str:
    """Seconds for people: ``9.8 s``, ``41 s``, ``9m 21s``, ``2h 08m``.

    Example:
        >>> [format_duration(s) for s in (9.84, 41.2, 561.0, 7732.0, 5400.0)]
        ['9.8 s', '41 s', '9m 21s', '2h 09m', '1h 30m']
    """
    s = float(seconds)
    if not math.isfinite(s):
        return "—"
    if s < 59.5:
        return f"{s:.1f} s" if s < 9.95 else f"{s:.0f} s"
    if s < 3570:
        m, r = divmod(round(s), 60)
        return f"{m}m {r:02d}s"
    h, m = divmod(round(s / 60), 60)
    return f"{h}h {m:02d}m"


_DURATION = re.compile(r"^(?:(\d+)h (\d\d)m|(\d+)m (\d\d)s|(\d+(?:\.\d+)?) s)$")


def parse_duration(text: str) -> float:
    """Seconds from :func:`format_duration`'s text, to the precision it shows
    (``parse_duration(format_duration(s))`` formats back to the same text).

    Raises:
        ValueError: for text :func:`format_duration` does not write.

    Example:
        >>> [parse_duration(t) for t in ("9.8 s", "41 s", "9m 21s", "2h 09m")]
        [9.8, 41.0, 561.0, 7740.0]
    """
    return _duration_bounds(text)[0]


def _duration_bounds(text: str) -> tuple[float, float]:
    """``(value, half_width)``: the seconds the text shows and its rounding."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise ValueError(f"not a duration: {text!r} (expected e.g. '9.8 s', '9m 21s', '2h 09m')")
    h, hm, mm, ms, sec = m.groups()
    if h is not None:
        return 3600.0 * int(h) + 60.0 * int(hm), 30.0
    if mm is not None:
        return 60.0 * int(mm) + int(ms), 0.5
    return float(sec), 0.05 if "." in sec else 0.5


def _serial_from(serial: str, per_seed: str, seeds: int) -> float:
    """The serial seconds that both cells show: the middle of the overlap of the serial
    cell's rounding interval and the per-seed cell's times ``seeds`` (the serial cell's
    value when they do not overlap)."""
    s, ds = _duration_bounds(serial)
    if seeds < 1 or per_seed.strip() in ("", "—"):
        return s
    p, dp = _duration_bounds(per_seed)
    lo, hi = max(s - ds, seeds * (p - dp)), min(s + ds, seeds * (p + dp))
    return (lo + hi) / 2 if lo <= hi else s


@dataclass(frozen=True)
class ExperimentCost:
    """The cost of one experiment's profile (see the module docstring)."""

    experiment: str
    profile: str
    seeds: int
    serial_s: float
    wall_s: float
    workers: int
    config_hash: str = ""
    summarised: float = 0.0  # when its config was summarised (epoch seconds)
    last_finished: float = 0.0  # the end of its newest run (epoch seconds)

    @property
    def mean_s(self) -> float:
        """Serial seconds per completed seed (NaN without seeds)."""
        return self.serial_s / self.seeds if self.seeds else math.nan

    @property
    def over_target(self) -> bool:
        """A full profile whose wall time is over :data:`FULL_TARGET_S`."""
        return self.profile == "full" and self.wall_s > FULL_TARGET_S


@dataclass(frozen=True)
class CostTotal:
    """A profile's experiments added up; ``target_s`` is None for a profile without one."""

    profile: str
    experiments: int
    seeds: int
    serial_s: float
    wall_s: float
    target_s: float | None
    over_target: bool

    def target_text(self) -> str:
        """What the target is, in words, e.g. ``"every experiment under 1h 30m"``."""
        if self.profile == "quick":
            return f"the whole lab under {_minutes(QUICK_TARGET_S)}"
        if self.profile == "full":
            return f"every experiment under {_minutes(FULL_TARGET_S)} on 2 cores"
        return "none"


def _minutes(s: float) -> str:
    return f"{s / 60:g} min"


def run_cost(
    runs: Iterable[Any],
    *,
    experiment: str,
    profile: str,
    config_hash: str = "",
    seeds: Iterable[int] | None = None,
    summarised: float = 0.0,
) -> ExperimentCost:
    """The cost of these runs (anything with ``seed``, ``started_at``, ``finished_at``,
    ``duration_s``, e.g. completed :class:`~elulab.lab.store.RunRecord`), counting only
    ``seeds`` when given; one run per seed (the first).

    Example:
        >>> from types import SimpleNamespace as Run
        >>> runs = [Run(seed=s, started_at=100.0 * s, finished_at=100.0 * s + 3, duration_s=3.0)
        ...         for s in range(3)]
        >>> c = run_cost(runs, experiment="toy", profile="quick", seeds=[0, 2])
        >>> c.seeds, c.serial_s, c.wall_s, c.mean_s
        (2, 6.0, 6.0, 3.0)
    """
    wanted = None if seeds is None else {int(s) for s in seeds}
    by_seed: dict[int, Any] = {}
    for r in runs:
        seed = int(r.seed)
        if (wanted is None or seed in wanted) and seed not in by_seed:
            by_seed[seed] = r
    chosen = list(by_seed.values())
    spans = [(float(r.started_at), float(r.finished_at)) for r in chosen]
    return ExperimentCost(
        experiment=experiment,
        profile=profile,
        seeds=len(chosen),
        serial_s=float(sum(float(r.duration_s) for r in chosen)),
        wall_s=union_length(spans),
        workers=max_overlap(spans),
        config_hash=config_hash,
        summarised=float(summarised),
        last_finished=max((b for _, b in spans), default=0.0),
    )


def store_costs(store: Any, profile: str | None = None) -> list[ExperimentCost]:
    """The cost of each (experiment, profile) of a store (a :class:`~elulab.lab.store.Store`):
    the completed runs of the config summarised last, of that summary's seeds.

    Args:
        store: an open store (read-only is enough).
        profile: only this profile; None: every profile.

    Returns:
        One :class:`ExperimentCost` per (experiment, profile), by profile (quick,
        full, then the others) and experiment name.
    """
    latest: dict[tuple[str, str], Any] = {}
    for s in store.summaries():  # latest first
        if profile is not None and s.profile != profile:
            continue
        latest.setdefault((s.experiment, s.profile), s)
    costs = []
    for (name, prof), s in latest.items():
        runs = store.runs(name, "completed", config_hash=s.config_hash)
        costs.append(
            run_cost(
                runs,
                experiment=name,
                profile=prof,
                config_hash=s.config_hash,
                seeds=s.seeds or None,
                summarised=s.created_at,
            )
        )
    return _ordered(costs)


def _profile_key(profile: str) -> tuple[int, str]:
    order = {p: i for i, p in enumerate(_PROFILE_ORDER)}
    return (order.get(profile, len(order)), profile)


def _ordered(costs: Iterable[ExperimentCost]) -> list[ExperimentCost]:
    return sorted(costs, key=lambda c: (_profile_key(c.profile), c.experiment))


def merge_costs(groups: Iterable[Sequence[ExperimentCost]]) -> list[ExperimentCost]:
    """One list from several stores' costs: per (experiment, profile) the one summarised
    last (on a tie, the first given).

    Example:
        >>> old = ExperimentCost("x", "full", 5, 50.0, 50.0, 1, summarised=1.0)
        >>> new = ExperimentCost("x", "full", 6, 60.0, 30.0, 2, summarised=2.0)
        >>> [c.seeds for c in merge_costs([[old], [new]])]
        [6]
    """
    merged: dict[tuple[str, str], ExperimentCost] = {}
    for group in groups:
        for c in group:
            key = (c.experiment, c.profile)
            if key not in merged or c.summarised > merged[key].summarised:
                merged[key] = c
    return _ordered(merged.values())


def profile_total(costs: Iterable[ExperimentCost], profile: str) -> CostTotal:
    """The experiments of ``profile`` added up, and whether the profile misses its target.

    Example:
        >>> t = profile_total([ExperimentCost("x", "quick", 2, 200.0, 200.0, 1),
        ...                    ExperimentCost("y", "quick", 2, 150.0, 150.0, 1)], "quick")
        >>> t.wall_s, t.over_target
        (350.0, True)
    """
    rows = [c for c in costs if c.profile == profile]
    wall = float(sum(c.wall_s for c in rows))
    target = {"quick": QUICK_TARGET_S, "full": FULL_TARGET_S}.get(profile)
    if profile == "quick":
        over = wall > QUICK_TARGET_S
    else:
        over = any(c.over_target for c in rows)
    return CostTotal(
        profile=profile,
        experiments=len(rows),
        seeds=sum(c.seeds for c in rows),
        serial_s=float(sum(c.serial_s for c in rows)),
        wall_s=wall,
        target_s=target,
        over_target=over,
    )


def profiles_of(costs: Iterable[ExperimentCost]) -> list[str]:
    """The profiles of ``costs``: quick, full, then the others by name."""
    return sorted({c.profile for c in costs}, key=_profile_key)


def target_cell(cost: ExperimentCost) -> str:
    """``over`` for a full profile over its target, ``ok`` for one under it, else ``""``."""
    if cost.profile != "full":
        return ""
    return "over" if cost.over_target else "ok"


def total_target_cell(total: CostTotal) -> str:
    """``ok`` / ``over`` for a profile with a target, else ``""``."""
    if total.target_s is None:
        return ""
    return "over" if total.over_target else "ok"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def costs_markdown(
    costs: Sequence[ExperimentCost],
    sources: Sequence[str] = (),
    kept: Sequence[ExperimentCost] = (),
) -> str:
    """The docs' cost table in Markdown: per profile (quick, full, ...) one row per
    experiment and a total, then a line naming the stores it was generated from and
    the rows of ``costs`` that were ``kept`` from an earlier table
    (:func:`parse_costs_markdown`) rather than read from them.

    Example:
        >>> print(costs_markdown([ExperimentCost("x", "full", 5, 600.0, 320.0, 2)]))
        **full profile** (target: every experiment under 90 min on 2 cores)
        <BLANKLINE>
        | experiment | seeds | serial | wall | per seed | workers | target |
        |---|---:|---:|---:|---:|---:|---|
        | `x` | 5 | 10m 00s | 5m 20s | 2m 00s | 2 | ok |
        | **total** | 5 | 10m 00s | 5m 20s | | | **ok** |
        <BLANKLINE>
        Generated by `elulab costs` from the stored runs; do not edit by hand.
        >>> costs_markdown([])
        'No runs are stored yet: run `elulab reproduce`, then `elulab costs`.'
    """
    if not costs:
        return "No runs are stored yet: run `elulab reproduce`, then `elulab costs`."
    lines: list[str] = []
    for profile in profiles_of(costs):
        rows = [c for c in costs if c.profile == profile]
        total = profile_total(rows, profile)
        if lines:
            lines.append("")
        lines += [
            f"**{_cell(profile)} profile** (target: {total.target_text()})",
            "",
            "| experiment | seeds | serial | wall | per seed | workers | target |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for c in rows:
            lines.append(
                f"| `{_cell(c.experiment)}` | {c.seeds} | {format_duration(c.serial_s)} | "
                f"{format_duration(c.wall_s)} | {format_duration(c.mean_s)} | {c.workers} | "
                f"{target_cell(c)} |"
            )
        verdict = total_target_cell(total)
        lines.append(
            f"| **total** | {total.seeds} | {format_duration(total.serial_s)} | "
            f"{format_duration(total.wall_s)} | | | {f'**{verdict}**' if verdict else ''} |"
        )
    newest = max(c.last_finished for c in costs)
    where = f" of {', '.join(f'`{_cell(s)}`' for s in sources)}" if sources else ""
    when = f" (newest run {_iso(newest)})" if newest > 0 else ""
    keep = ""
    if kept:
        by_profile = {p: [c.experiment for c in kept if c.profile == p] for p in profiles_of(kept)}
        keep = (
            "; the rows of "
            + "; ".join(
                f"{', '.join(f'`{_cell(n)}`' for n in names)} ({_cell(p)})"
                for p, names in by_profile.items()
            )
            + " are kept from the table this one replaced (measured earlier, to the precision shown)"
        )
    lines += [
        "",
        f"Generated by `elulab costs` from the stored runs{where}{when}{keep}; "
        "do not edit by hand.",
    ]
    return "\n".join(lines)


_ROW = re.compile(r"^\| `(.+?)` \| (\d+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| (\d+) \| [^|]* \|$")
_HEAD = re.compile(r"^\*\*(.+) profile\*\*")
_NEWEST = re.compile(r"newest run (\d{4}-\d\d-\d\d \d\d:\d\d) UTC")


def parse_costs_markdown(text: str) -> list[ExperimentCost]:
    """The experiment rows of a table :func:`costs_markdown` wrote (e.g. the text of a
    file that holds one between its markers), to the precision the table shows (the
    serial time is the one consistent with both its cell and the per-seed cell); each
    row's ``last_finished`` is the table's newest run, ``summarised`` 0 (older than any
    store). Totals and other lines are skipped.

    Raises:
        ValueError: a row in a profile's table that does not parse.

    Example:
        >>> md = costs_markdown([ExperimentCost("x", "full", 5, 600.0, 320.0, 2)])
        >>> [(c.experiment, c.profile, c.seeds, c.serial_s, c.wall_s, c.workers)
        ...  for c in parse_costs_markdown(md)]
        [('x', 'full', 5, 600.0, 320.0, 2)]
    """
    newest = _NEWEST.search(text)
    when = 0.0
    if newest:
        stamp = _dt.datetime.strptime(newest.group(1), "%Y-%m-%d %H:%M")
        when = stamp.replace(tzinfo=_dt.timezone.utc).timestamp()
    out, profile = [], None
    for line in text.splitlines():
        line = line.strip()
        if head := _HEAD.match(line):
            profile = head.group(1)
            continue
        if profile is None or not line.startswith("| `"):
            continue
        row = _ROW.match(line)
        if row is None:
            raise ValueError(f"a row of the {profile} cost table does not parse: {line!r}")
        name, seeds, serial, wall, per_seed, workers = row.groups()
        out.append(ExperimentCost(
            experiment=name.replace("\\|", "|"), profile=profile, seeds=int(seeds),
            serial_s=_serial_from(serial, per_seed, int(seeds)), wall_s=parse_duration(wall),
            workers=int(workers),
            last_finished=when,
        ))  # fmt: skip
    return _ordered(out)


def _iso(t: float) -> str:
    stamp = _dt.datetime.fromtimestamp(float(t), tz=_dt.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def replace_between_markers(
    text: str, block: str, begin: str = BEGIN_MARKER, end: str = END_MARKER
) -> str:
    """``text`` with what lies between ``begin`` and ``end`` replaced by ``block``
    (the markers stay, each on its own line).

    Raises:
        ValueError: the markers are missing, repeated or out of order.

    Example:
        >>> replace_between_markers("a\\n<!-- costs:begin -->\\nold\\n<!-- costs:end -->\\nb", "new")
        'a\\n<!-- costs:begin -->\\nnew\\n<!-- costs:end -->\\nb'
    """
    i, j = _marker_span(text, begin, end)
    return f"{text[:i]}{begin}\n{block.strip()}\n{end}{text[j + len(end) :]}"


def between_markers(text: str, begin: str = BEGIN_MARKER, end: str = END_MARKER) -> str:
    """What lies between ``begin`` and ``end`` in ``text``.

    Raises:
        ValueError: the markers are missing, repeated or out of order.

    Example:
        >>> between_markers("a\\n<!-- costs:begin -->\\nold\\n<!-- costs:end -->\\nb").strip()
        'old'
    """
    i, j = _marker_span(text, begin, end)
    return text[i + len(begin) : j]


def _marker_span(text: str, begin: str, end: str) -> tuple[int, int]:
    if text.count(begin) != 1 or text.count(end) != 1:
        raise ValueError(
            f"need exactly one {begin} and one {end} line, found "
            f"{text.count(begin)} and {text.count(end)}"
        )
    i, j = text.index(begin), text.index(end)
    if j < i:
        raise ValueError(f"{end} comes before {begin}")
    return i, j
