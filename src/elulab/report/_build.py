"""Build the static HTML report from a result store.

Reads the store (:mod:`elulab.lab.store`), the claims ledger and the full-profile
reference verdicts (:mod:`elulab.report._reference`) only; never imports an
experiment. The site is written into a temporary folder beside ``out_dir`` and
swapped in at the end, so a failed build leaves the previous report untouched.

Layout of the output folder::

    index.html              one row per (claim, experiment)
    claim-C1.html ...       one page per claim
    static/style.css
    figures/<experiment>/   figures copied from the store and drawn from series
    .elulab-report          marker: this folder may be replaced by the next build
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from ..lab.costs import format_duration, run_cost
from ..lab.stats import STATUSES, format_number
from ..lab.store import revision_warning
from ._claims import Claim, Ledger, parse_claims
from ._figures import draw_series, series_stats, series_title
from ._reference import Reference, ReferenceEntry, ReferenceError, ReferenceVerdict, load_reference

__all__ = ["ReportError", "build_report", "check_out_dir"]

MARKER = ".elulab-report"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")
STATUS_CLASS = {status: status.replace(" ", "-") for status in STATUSES}
#: what each status means, for the index's legend (the words are those of STATUSES)
STATUS_MEANING = {
    "supported": "the data support the claim (every sub-claim holds)",
    "not supported": "the data contradict the claim",
    "mixed": "some sub-claims hold and some are contradicted",
    "inconclusive": "the interval cannot decide (too few seeds or too small a budget)",
}
NOT_MEASURED = "not yet measured"
NO_VERDICT = "no verdict"
_UNKNOWN_CLAIM = (
    "Unknown claim: an experiment names this id, but the claims ledger has no row for it."
)
# tables with at most this many rows over all seeds are shown for every seed
SMALL_TABLE_ROWS = 30
MAX_TABLE_ROWS = 300
# per-seed metric columns are shown up to this many seeds
MAX_SEED_COLUMNS = 8
# a verdict summary longer than this shows its first sentence, the rest folded
SUMMARY_CHARS = 420
# a figure at most this many pixels wide shares a row with another: one of the two figure
# columns of a claim page at 1280 px (wider ones take a whole row)
NARROW_FIGURE_PX = 536


class ReportError(ValueError):
    """The report cannot be built (missing store, unsafe output folder, bad claims file)."""


# -- formatting --------------------------------------------------------------------------


def fmt_num(x: Any) -> str:
    """A number for people: 4 significant digits, scientific when tiny or huge.

    Example:
        >>> fmt_num(0.761578), fmt_num(12345678.0), fmt_num(1e-13), fmt_num(float("nan"))
        ('0.7616', '1.235e+07', '1e-13', 'n/a')
    """
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    return f"{v:.4g}"


def fmt_ci(low: Any, high: Any) -> str:
    """``[low, high]``, or ``n/a`` when either end is missing or NaN."""
    if fmt_num(low) == "n/a" or fmt_num(high) == "n/a":
        return "n/a"
    return f"[{fmt_num(low)}, {fmt_num(high)}]"


def fmt_effect(x: Any) -> str:
    """A verdict's effect or interval end: 3 significant digits, as the summaries print them.

    Example:
        >>> fmt_effect(0.14371), fmt_effect(-38.014), fmt_effect(None)
        ('0.144', '-38', 'n/a')
    """
    if x is None or isinstance(x, bool):
        return fmt_num(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return fmt_num(v)
    return format_number(v)


def fmt_effect_ci(low: Any, high: Any) -> str:
    """``[low, high]`` to 3 significant digits, or ``n/a``."""
    if fmt_num(low) == "n/a" or fmt_num(high) == "n/a":
        return "n/a"
    return f"[{fmt_effect(low)}, {fmt_effect(high)}]"


def fmt_time(t: Any) -> str:
    """A timestamp (datetime, epoch seconds or ISO text) as ``YYYY-MM-DD HH:MM UTC``."""
    if t is None or t == "":
        return "—"
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        if not math.isfinite(t):
            return "—"
        t = _dt.datetime.fromtimestamp(float(t), tz=_dt.timezone.utc)
    if isinstance(t, str):
        try:
            t = _dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
        except ValueError:
            return t
    if isinstance(t, _dt.datetime):
        if t.tzinfo is not None:
            t = t.astimezone(_dt.timezone.utc)
            return t.strftime("%Y-%m-%d %H:%M:%S UTC")
        return t.strftime("%Y-%m-%d %H:%M:%S")
    return str(t)


def fmt_value(v: Any) -> str:
    """A config or environment value: exact numbers, lists joined by commas."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return format(v, ".12g")  # exact for any value a person types, without float noise
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt_value(x) for x in v) if v else "(empty)"
    if isinstance(v, Mapping):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def fmt_cell(v: Any) -> str:
    """A table cell: numbers rounded like :func:`fmt_num`, other JSON as text."""
    if v is None:
        return "—"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt_num(v)
    if isinstance(v, (list, tuple, Mapping)):
        return json.dumps(v, default=str)
    return str(v)


def inline_md(text: str) -> Markup:
    """Escape ``text`` and render the two inline Markdown forms the ledger uses:
    ```code``` and ``**bold**``."""
    parts = str(text).split("`")
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2 == 1 and i < len(parts) - 1:
            out.append(f"<code>{escape(part)}</code>")
        else:
            piece = str(escape(part if i % 2 == 0 else "`" + part))
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", piece))
    return Markup("".join(out))


def short_revision(rev: Any) -> str:
    """A git revision for people: 10 hex digits, ``-dirty`` kept; ``unknown`` for None.

    Example:
        >>> short_revision("0123456789abcdef0123456789abcdef01234567-dirty"), short_revision(None)
        ('0123456789-dirty', 'unknown')
    """
    if rev is None or rev == "":
        return "unknown"
    rev = str(rev)
    dirty = rev.endswith("-dirty")
    base = rev[: -len("-dirty")] if dirty else rev
    return base[:10] + ("-dirty" if dirty else "")


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` (letters, digits, ``_.-``)."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-.")
    return s or "x"


def _natural_key(s: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            rows.extend(_flatten(v, key + "."))
        else:
            rows.append((key, fmt_value(v)))
    return rows


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def breakable(name: str) -> Markup:
    """``name`` escaped, with a line-break opportunity after each ``_``, ``/`` and ``.``,
    so that long column names wrap instead of widening a table."""
    return Markup(re.sub(r"([_/.])", r"\1<wbr>", str(escape(name))))


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) in pixels of a PNG file, from its header; None if not a PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


# -- the data the templates see ------------------------------------------------------------


@dataclass
class FigureView:
    src: str  # relative to the report folder, or "" when the file is missing
    caption: str
    claim: str | None
    origin: str  # "experiment" or "series"
    is_image: bool = True
    width: int | None = None  # natural size in pixels (PNG), None when unknown
    height: int | None = None
    key: str = ""  # the series name, for drawn series
    title: str = ""  # the drawn series' title, in words

    @property
    def wide(self) -> bool:
        """Takes a whole row: wider than one of two columns, or of unknown size."""
        return self.width is None or self.width > NARROW_FIGURE_PX


@dataclass
class TableView:
    name: str
    columns: list[str]
    numeric: list[bool]
    rows: list[list[str]]
    note: str = ""


@dataclass
class VerdictView:
    claim: str
    status: str
    css: str
    effect: str
    ci: str
    n_seeds: int | str
    summary: str
    effect_name: str
    qualifier: str = ""

    @property
    def label(self) -> str:
        """The status with its qualifier, e.g. ``supported (small)``."""
        return f"{self.status} ({self.qualifier})" if self.qualifier else self.status

    @property
    def summary_parts(self) -> tuple[str, list[str]]:
        """(what to show, the rest as a list): see :func:`split_summary`."""
        return split_summary(self.summary)


def split_summary(text: str, limit: int = SUMMARY_CHARS) -> tuple[str, list[str]]:
    """A long verdict summary as its first sentence and the rest, one sentence or check
    per item (the checks of a summary are joined by ``"; "``); a short one whole.

    Example:
        >>> split_summary("Short.")
        ('Short.', [])
        >>> split_summary("Lead. a 1 > 0: supported; b 2 < 3: supported. Note.", limit=10)
        ('Lead.', ['a 1 > 0: supported;', 'b 2 < 3: supported.', 'Note.'])
    """
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text, []
    parts = [p for p in re.split(r"(?<=[.;])\s+", text) if p]
    if len(parts) < 2 or len(parts[0]) > limit:
        return "", parts
    return parts[0], parts[1:]


@dataclass
class ReferenceView:
    """A full-profile reference verdict, shown beside the verdict of the run at hand."""

    experiment: str
    verdict: VerdictView
    profile: str
    seeds: int
    revision: str  # short form
    revision_full: str
    elulab: str
    summarised: str
    same_config: bool = False  # the run at hand has the reference's config
    revision_warning: str | None = None


@dataclass
class RunView:
    seed: Any
    status: str
    duration: str
    device: str
    finished: str
    error: str = ""
    attempts: int = 1
    revision: str = "unknown"  # short form
    revision_full: str = "unknown"


@dataclass
class ExperimentView:
    name: str
    title: str
    anchor: str
    profile: str
    config_hash: str
    claims: list[str]
    seeds: list[Any]
    created: str
    config_rows: list[tuple[str, str]]
    env_rows: list[tuple[str, str]]
    verdicts: dict[str, VerdictView]
    figures: list[FigureView]
    tables: list[TableView]
    metrics: TableView | None
    runs: list[RunView]
    failed: list[RunView]
    errors: list[str]
    missing_seeds: list[Any]
    version: str = "—"
    revisions: list[str] = field(default_factory=list)  # short forms, of the verdict's runs
    revision_warning: str | None = None
    references: dict[str, ReferenceView] = field(default_factory=dict)
    series_figures: list[FigureView] = field(default_factory=list)
    zero_series: list[str] = field(default_factory=list)  # sentences: series not drawn
    decisive: bool = False  # the profile of the reference (full): not a quick check
    wall_s: float = 0.0  # the union of its runs' [started, finished] intervals
    serial_s: float = 0.0  # its runs' durations added up

    @property
    def wall(self) -> str:
        return format_duration(self.wall_s) if self.runs else "—"

    @property
    def serial(self) -> str:
        return format_duration(self.serial_s) if self.runs else "—"

    def other_verdicts(self, claim_id: str) -> list[VerdictView]:
        return [v for c, v in self.verdicts.items() if c != claim_id]

    def figures_for(self, claim_id: str) -> list[FigureView]:
        return [f for f in self.figures if f.claim in (None, claim_id)]

    @property
    def n_runs(self) -> int:
        return len(self.runs)


@dataclass
class ClaimView:
    id: str
    title: str
    body: str
    text: str
    library: str
    measure: str
    href: str
    in_ledger: bool
    experiments: list[ExperimentView] = field(default_factory=list)
    # reference verdicts of experiments the store does not hold
    unmeasured_references: list[ReferenceView] = field(default_factory=list)

    @property
    def quick(self) -> list[ExperimentView]:
        """Its experiments whose summary is not of the decisive (full) profile."""
        return [e for e in self.experiments if not e.decisive]


@dataclass
class IndexRow:
    claim: ClaimView
    experiment: ExperimentView | None
    verdict: VerdictView | None
    rowspan: int  # >0 on the first row of a claim, 0 on the following ones
    reference: ReferenceView | None = None


# -- reading the store ------------------------------------------------------------------------


def _verdict_view(v: Any) -> VerdictView:
    status = str(v.status)
    return VerdictView(
        claim=str(v.claim),
        status=status,
        css=STATUS_CLASS.get(status, "inconclusive"),
        effect=fmt_effect(v.effect),
        ci=fmt_effect_ci(v.ci_low, v.ci_high),
        n_seeds=v.n_seeds,
        summary=str(v.summary or ""),
        effect_name=str(v.effect_name or ""),
        qualifier=str(getattr(v, "qualifier", "") or ""),
    )


def _reference_view(
    entry: ReferenceEntry, verdict: ReferenceVerdict, config_hash: str | None = None
) -> ReferenceView:
    return ReferenceView(
        experiment=entry.experiment,
        verdict=_verdict_view(verdict),
        profile=entry.profile,
        seeds=len(entry.seeds),
        revision=short_revision(entry.revision),
        revision_full=entry.revision,
        elulab=entry.elulab or "—",
        summarised=fmt_time(entry.summarised),
        same_config=config_hash is not None and config_hash == entry.config_hash,
        revision_warning=revision_warning(list(entry.revisions)) if entry.revisions else None,
    )


def _run_view(r: Any) -> RunView:
    env = r.env if isinstance(getattr(r, "env", None), Mapping) else {}
    dur = getattr(r, "duration_s", None)
    return RunView(
        seed=r.seed,
        status=str(r.status),
        duration=f"{float(dur):.1f} s" if _is_num(dur) and math.isfinite(dur) else "—",
        device=str(env.get("device", "—")),
        finished=fmt_time(getattr(r, "finished_at", None)),
        error=str(getattr(r, "error", "") or ""),
        attempts=int(getattr(r, "attempts", 1) or 1),
        revision=short_revision(getattr(r, "git", None)),
        revision_full=str(getattr(r, "git", None) or "unknown"),
    )


def _table_views(runs: Sequence[Any]) -> list[TableView]:
    names: list[str] = []
    for r in runs:
        for name in r.result.tables:
            if name not in names:
                names.append(name)
    views: list[TableView] = []
    for name in names:
        per_seed = [(r.seed, r.result.tables[name]) for r in runs if name in r.result.tables]
        total = sum(len(rows) for _, rows in per_seed)
        if len(per_seed) > 1 and total <= SMALL_TABLE_ROWS:
            rows = [{"seed": seed, **row} for seed, rows in per_seed for row in rows]
            note = f"all {len(per_seed)} seeds"
        else:
            seed, rows = per_seed[0]
            note = f"seed {seed}" + (
                f" (the first of {len(per_seed)} seeds)" if len(per_seed) > 1 else ""
            )
        columns: list[str] = []
        for row in rows:
            for k in row:
                if k not in columns:
                    columns.append(k)
        shown = rows[:MAX_TABLE_ROWS]
        if len(rows) > MAX_TABLE_ROWS:
            note += f"; the first {MAX_TABLE_ROWS} of {len(rows)} rows"
        numeric = [
            all(_is_num(row.get(c)) for row in shown if row.get(c) is not None)
            and any(row.get(c) is not None for row in shown)
            for c in columns
        ]
        views.append(
            TableView(
                name=name,
                columns=[str(c) for c in columns],
                numeric=numeric,
                rows=[[fmt_cell(row.get(c)) for c in columns] for row in shown],
                note=note,
            )
        )
    return views


def _metrics_view(runs: Sequence[Any]) -> TableView | None:
    names: list[str] = []
    for r in runs:
        for k in r.result.metrics:
            if k not in names:
                names.append(k)
    if not names:
        return None
    per_seed = len(runs) <= MAX_SEED_COLUMNS
    columns = ["metric", "mean", "sd", "min", "max", "n"]
    if per_seed:
        columns += [f"seed {r.seed}" for r in runs]
    rows: list[list[str]] = []
    for name in names:
        vals = [r.result.metrics.get(name) for r in runs]
        finite = [float(v) for v in vals if v is not None and math.isfinite(float(v))]
        n = len(finite)
        mean = sum(finite) / n if n else math.nan
        sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else math.nan
        if n > 1 and max(finite) == min(finite):
            sd = 0.0  # equal values: the rounding noise of the sum is not a spread
        row = [
            name,
            fmt_num(mean),
            fmt_num(sd),
            fmt_num(min(finite) if n else math.nan),
            fmt_num(max(finite) if n else math.nan),
            str(n),
        ]
        if per_seed:
            row += [fmt_num(v) for v in vals]
        rows.append(row)
    note = "sd: sample standard deviation over seeds; n: seeds with a finite value"
    return TableView(
        name="metrics",
        columns=columns,
        numeric=[False] + [True] * (len(columns) - 1),
        rows=rows,
        note=note,
    )


def _copy_figures(
    summary: Any, artifacts_dir: Path, out: Path, fig_dir: str, used: set[str]
) -> list[FigureView]:
    views: list[FigureView] = []
    root = artifacts_dir.resolve()
    for fig in summary.figures or []:
        rel = str(fig.get("path", ""))
        caption = str(fig.get("caption", "") or "")
        claim = fig.get("claim") or None
        src = (artifacts_dir / rel).resolve()
        inside = src == root or root in src.parents
        if not rel or not inside or not src.is_file():
            views.append(
                FigureView(src="", caption=caption or rel, claim=claim, origin="experiment")
            )
            continue
        name = slug(src.name)
        stem, suffix = os.path.splitext(name)
        i = 1
        while f"{fig_dir}/{name}" in used:
            i += 1
            name = f"{stem}-{i}{suffix}"
        target = f"{fig_dir}/{name}"
        used.add(target)
        (out / fig_dir).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out / target)
        size = png_size(out / target)
        views.append(
            FigureView(
                src=target,
                caption=caption,
                claim=claim,
                origin="experiment",
                is_image=suffix.lower() in IMAGE_SUFFIXES,
                width=size[0] if size else None,
                height=size[1] if size else None,
            )
        )
    return views


def _draw_series(
    runs: Sequence[Any], out: Path, fig_dir: str, used: set[str]
) -> tuple[list[FigureView], list[str]]:
    """One figure per series name; and one sentence per series with nothing to draw."""
    names: list[str] = []
    for r in runs:
        for name in r.result.series:
            if name not in names:
                names.append(name)
    views: list[FigureView] = []
    notes: list[str] = []
    for name in names:
        series = [r.result.series[name] for r in runs if name in r.result.series]
        stats = series_stats(series)
        title = series_title(name, stats.ylabel)
        n = len(series) - stats.skipped
        zero = stats.all_zero
        if zero and len(zero) == len(stats.mean):
            notes.append(
                f"{title}: all zero, for every curve ({', '.join(zero)}) over "
                f"{n} seed{'s' if n != 1 else ''}; not drawn."
            )
            continue
        target = f"{fig_dir}/series-{slug(name)}.png"
        i = 1
        while target in used:
            i += 1
            target = f"{fig_dir}/series-{slug(name)}-{i}.png"
        if not draw_series(stats, title, out / target):
            notes.append(f"{title}: no finite value to draw.")
            continue
        used.add(target)
        caption = (
            f"Mean over {n} seed{'s' if n != 1 else ''} per curve"
            + (
                ""
                if n < 2
                else ", band: ×/÷ one geometric standard deviation over seeds"
                if stats.logy
                else ", band: ±1 standard deviation over seeds"
            )
            + ("; log scale, geometric mean of the positive values" if stats.logy else "")
            + "."
        )
        if zero:
            caption += f" All zero, not drawn: {', '.join(zero)}."
        if stats.skipped:
            caption += (
                f" {stats.skipped} seed{'s' if stats.skipped != 1 else ''} with different"
                " x values left out."
            )
        size = png_size(out / target)
        views.append(
            FigureView(
                src=target,
                caption=caption,
                claim=None,
                origin="series",
                width=size[0] if size else None,
                height=size[1] if size else None,
                key=name,
                title=title,
            )
        )
    return views, notes


def _experiment_view(
    store: Any, summary: Any, out: Path, used: set[str], reference: Reference
) -> ExperimentView:
    name = str(summary.experiment)
    fig_dir = f"figures/{slug(name)}"
    seeds = list(summary.seeds or [])
    runs = sorted(
        store.runs(name, status=None, config_hash=summary.config_hash), key=lambda r: r.seed
    )
    completed = [
        r
        for r in runs
        if r.status == "completed" and r.result is not None and (not seeds or r.seed in seeds)
    ]
    done = {r.seed for r in completed}
    failed = [r for r in runs if r.status != "completed" and r.seed not in done]
    figures = _copy_figures(summary, Path(store.artifacts_dir), out, fig_dir, used)
    series_figures, zero_series = _draw_series(completed, out, fig_dir, used)
    verdicts: dict[str, VerdictView] = {}
    for v in summary.verdicts or []:
        verdicts.setdefault(str(v.claim), _verdict_view(v))
    claims = [str(c) for c in (summary.claims or [])]
    claims += [c for c in verdicts if c not in claims]
    references: dict[str, ReferenceView] = {}
    for cid in claims:
        found = reference.lookup(name, cid)
        if found is not None:
            references[cid] = _reference_view(*found, config_hash=summary.config_hash)
    config = summary.config if isinstance(summary.config, Mapping) else {}
    env = summary.env if isinstance(summary.env, Mapping) else {}
    revisions = list(getattr(summary, "revisions", None) or [r.git for r in completed])
    cost = run_cost(completed, experiment=name, profile=str(summary.profile))
    version = getattr(summary, "version", None)
    if version is None:  # a summary written without it: the runs' version, if they agree
        found = {r.version for r in completed if getattr(r, "version", None) is not None}
        version = found.pop() if len(found) == 1 else None
    return ExperimentView(
        name=name,
        title=str(summary.title or name),
        anchor=f"exp-{slug(name)}",
        profile=str(summary.profile or "—"),
        config_hash=str(summary.config_hash or ""),
        claims=claims,
        seeds=seeds,
        created=fmt_time(summary.created_at),
        config_rows=[(str(k), fmt_value(v)) for k, v in config.items()],
        env_rows=_flatten(env),
        verdicts=verdicts,
        figures=figures,
        tables=_table_views(completed),
        metrics=_metrics_view(completed),
        runs=[_run_view(r) for r in completed],
        failed=[_run_view(r) for r in failed],
        errors=[str(e) for e in (getattr(summary, "errors", None) or [])],
        missing_seeds=[s for s in seeds if s not in done],
        version="—" if version is None else str(version),
        revisions=sorted({short_revision(r) for r in revisions}),
        revision_warning=(
            revision_warning([short_revision(r) for r in revisions]) if completed else None
        ),
        references=references,
        series_figures=series_figures,
        zero_series=zero_series,
        decisive=str(summary.profile) == reference.profile,
        wall_s=cost.wall_s,
        serial_s=cost.serial_s,
    )


# -- rendering --------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("elulab.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = inline_md
    env.filters["breakable"] = breakable
    return env


def _claim_views(
    ledger: Ledger, experiments: Sequence[ExperimentView], reference: Reference
) -> list[ClaimView]:
    views: list[ClaimView] = []
    used: set[str] = set()

    def add(c: Claim, in_ledger: bool) -> None:
        page = f"claim-{slug(c.id)}.html"
        i = 1
        while page in used:
            i += 1
            page = f"claim-{slug(c.id)}-{i}.html"
        used.add(page)
        views.append(
            ClaimView(
                id=c.id,
                title=c.title,
                body=c.body,
                text=c.text,
                library=c.library,
                measure=c.measure,
                href=page,
                in_ledger=in_ledger,
            )
        )

    for c in ledger.claims:
        add(c, True)
    known = {c.id for c in ledger.claims}
    extra = sorted({cid for e in experiments for cid in e.claims} - known, key=_natural_key)
    for cid in extra:
        add(Claim(id=cid, text=_UNKNOWN_CLAIM, library="", measure=""), False)
    by_id = {v.id: v for v in views}
    for e in experiments:
        for cid in e.claims:
            by_id[cid].experiments.append(e)
    in_store = {e.name for e in experiments}
    for c in views:
        c.unmeasured_references = [
            _reference_view(entry, verdict)
            for entry, verdict in reference.for_claim(c.id)
            if entry.experiment not in in_store
        ]
    return views


def _index_rows(claims: Sequence[ClaimView]) -> list[IndexRow]:
    rows: list[IndexRow] = []
    for c in claims:
        n = len(c.experiments) + len(c.unmeasured_references)
        if not n:
            rows.append(IndexRow(claim=c, experiment=None, verdict=None, rowspan=1))
            continue
        for i, e in enumerate(c.experiments):
            rows.append(
                IndexRow(
                    claim=c,
                    experiment=e,
                    verdict=e.verdicts.get(c.id),
                    rowspan=n if i == 0 else 0,
                    reference=e.references.get(c.id),
                )
            )
        for j, ref in enumerate(c.unmeasured_references):
            first = not c.experiments and j == 0
            rows.append(
                IndexRow(
                    claim=c, experiment=None, verdict=None, rowspan=n if first else 0, reference=ref
                )
            )
    return rows


def _status_counts(rows: Sequence[IndexRow]) -> list[tuple[str, str, int]]:
    """(label, css class, rows) for the index summary line, in a fixed order."""
    order = [*STATUS_CLASS, NO_VERDICT, NOT_MEASURED]
    css = {**STATUS_CLASS, NO_VERDICT: "no-verdict", NOT_MEASURED: "unmeasured"}
    counts = dict.fromkeys(order, 0)
    for r in rows:
        if r.experiment is None:
            counts[NOT_MEASURED] += 1
        elif r.verdict is None:
            counts[NO_VERDICT] += 1
        else:
            counts[r.verdict.status] = counts.get(r.verdict.status, 0) + 1
    return [(k, css.get(k, "inconclusive"), n) for k, n in counts.items() if n]


def _reference_facts(reference: Reference) -> dict[str, Any]:
    """What the banner says about the reference: its revisions, versions, date."""
    entries = list(reference.experiments.values())
    return {
        "n": len(entries),
        "profile": reference.profile,
        "revisions": sorted({short_revision(e.revision) for e in entries}),
        "versions": sorted({e.elulab for e in entries if e.elulab}),
        "created": fmt_time(reference.created) if reference.created else "—",
    }


def _run_time(experiments: Sequence[ExperimentView]) -> dict[str, Any]:
    """The total run time of the runs the report shows, for the index."""
    return {
        "runs": sum(e.n_runs for e in experiments),
        "wall": format_duration(sum(e.wall_s for e in experiments)),
        "serial": format_duration(sum(e.serial_s for e in experiments)),
    }


def _render(store: Any, store_path: Path, ledger: Ledger, out: Path, reference: Reference) -> None:
    from .. import __version__

    used: set[str] = set()
    experiments = [
        _experiment_view(store, s, out, used, reference) for s in store.latest_summaries()
    ]
    experiments.sort(key=lambda e: (_natural_key(e.claims[0]) if e.claims else [], e.name))
    claims = _claim_views(ledger, experiments, reference)
    rows = _index_rows(claims)
    env = _environment()
    quick = [e for e in experiments if not e.decisive]
    common = {
        "generated": fmt_time(_dt.datetime.now(tz=_dt.timezone.utc)),
        "version": __version__,
        "store_path": str(store_path.resolve()),
        "ledger": ledger,
        "claims": claims,
        "NOT_MEASURED": NOT_MEASURED,
        "NO_VERDICT": NO_VERDICT,
        "reference": _reference_facts(reference),
        "quick_profiles": sorted({e.profile for e in quick}),
        "max_quick_seeds": max((e.n_runs for e in quick), default=0),
    }
    (out / "static").mkdir(parents=True, exist_ok=True)
    css = resources.files("elulab.report").joinpath("static", "style.css").read_text("utf-8")
    (out / "static" / "style.css").write_text(css, encoding="utf-8")
    index = env.get_template("index.html").render(
        **common,
        rows=rows,
        experiments=experiments,
        counts=_status_counts(rows),
        meanings=[(s, STATUS_CLASS[s], STATUS_MEANING[s]) for s in STATUSES],
        any_quick=bool(quick),
        run_time=_run_time(experiments),
        page_title="elulab claim ledger",
    )
    (out / "index.html").write_text(index, encoding="utf-8")
    page = env.get_template("claim.html")
    for i, c in enumerate(claims):
        html = page.render(
            **common,
            claim=c,
            prev=claims[i - 1] if i > 0 else None,
            next=claims[i + 1] if i + 1 < len(claims) else None,
            any_quick=bool(c.quick),
            page_title=f"{c.id} · {c.title} · elulab",
        )
        (out / c.href).write_text(html, encoding="utf-8")
    (out / MARKER).write_text("This folder is written by elulab.report.build_report.\n", "utf-8")


# -- the public entry point --------------------------------------------------------------------


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ReportError(f"report folder {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ReportError(
            f"report folder {out} exists, is not empty and is not an elulab report; "
            "refusing to replace it (choose another --out or empty it)"
        )


def check_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Check, before any work, that :func:`build_report` could write ``out_dir``.

    The folder must be missing (its parents are created), empty, or an earlier
    report, and the folder that will hold it must be writable (checked by creating
    and removing an empty temporary folder there). Nothing else is written.

    Returns:
        ``out_dir`` as an absolute path.

    Raises:
        ReportError: one line naming the folder and what is wrong.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> check_out_dir(d / "site") == (d / "site").absolute()
        True
        >>> (d / "file").write_text("x")
        1
        >>> try:
        ...     check_out_dir(d / "file" / "site")
        ... except ReportError as e:
        ...     print(str(e).endswith("file is not a folder"))
        True
    """
    out = Path(out_dir).absolute()
    _check_out(out)
    holder = out.parent
    while not holder.exists() and holder != holder.parent:
        holder = holder.parent
    where = f"cannot write the report folder {out}"
    if not holder.is_dir():
        raise ReportError(f"{where}: {holder} is not a folder")
    if not os.access(holder, os.W_OK | os.X_OK):
        raise ReportError(f"{where}: {holder} is not writable")
    try:
        probe = tempfile.mkdtemp(prefix=f".{out.name}.check-", dir=holder)
        os.rmdir(probe)
    except OSError as e:
        raise ReportError(
            f"{where}: cannot create a folder in {holder} ({e.strerror or e})"
        ) from None
    return out


def _swap(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def build_report(
    store_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    claims_path: str | os.PathLike[str] | None = None,
    reference: Reference | str | os.PathLike[str] | None = None,
) -> Path:
    """Render the result store as a static HTML site that opens from disk.

    The index has one row per (claim, experiment): verdict badge, effect with its
    95% confidence interval, seeds, experiment and profile, and a link to the
    claim's page. Each claim page shows the claim and what must be measured, then
    for each experiment covering it: verdicts, figures (those the experiment drew
    and those drawn here from its series: mean over seeds, band ±1 sd), tables,
    per-seed metrics, the resolved config, seeds, environment and failed runs.

    The site is built in a temporary folder beside ``out_dir`` and swapped in at
    the end: a failed build leaves any previous report as it was. An existing
    ``out_dir`` is replaced only if it is empty or an earlier elulab report.

    Args:
        store_path: the result store (SQLite file written by :mod:`elulab.lab.store`).
        out_dir: the folder to write; created (with parents) if missing.
        claims_path: a claims ledger in the ``CLAIMS.md`` format; default: the copy
            bundled with elulab.
        reference: the full-profile reference verdicts shown beside this store's
            (:class:`~elulab.report.Reference`, or a path to a file written by
            ``elulab reference``); default: the reference shipped with elulab.

    Returns:
        The path of ``index.html``.

    Raises:
        ReportError: the store is missing or unreadable, ``out_dir`` is unsafe to
            replace or cannot be written (see :func:`check_out_dir`), or the claims
            file cannot be parsed.

    Example:
        >>> import tempfile, pathlib
        >>> from elulab.lab.store import Store
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = Store(d / "results.sqlite")
        >>> build_report(d / "results.sqlite", d / "report").name
        'index.html'
    """
    store_path = Path(store_path)
    out = Path(out_dir)
    if not store_path.is_file():
        raise ReportError(
            f"result store not found: {store_path} (run `elulab run` or `elulab reproduce` first)"
        )
    try:
        ledger = parse_claims(claims_path)
    except ValueError as e:
        raise ReportError(str(e)) from None
    if not isinstance(reference, Reference):
        try:
            reference = load_reference(reference)
        except ReferenceError as e:
            raise ReportError(str(e)) from None
    check_out_dir(out)
    from ..lab.store import Store, StoreError

    try:
        store = Store(store_path, create=False, readonly=True)
    except StoreError as e:
        raise ReportError(f"cannot open result store {store_path}: {e}") from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    except OSError as e:
        store.close()
        raise ReportError(f"cannot write the report folder {out}: {e.strerror or e}") from None
    try:
        try:
            _render(store, store_path, ledger, tmp, reference)
        except StoreError as e:
            raise ReportError(f"cannot read result store {store_path}: {e}") from None
        finally:
            close = getattr(store, "close", None)
            if callable(close):
                close()
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"
