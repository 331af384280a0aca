"""Reference verdicts: the full-profile verdicts shipped with elulab, and the ledger table.

The quick profile checks that everything runs in minutes; its verdicts rest on two or
three seeds and small budgets and are not the decisive ones. The decisive verdicts come
from the full profiles. :func:`build_reference` takes them from a result store (the
newest summary of each experiment whose profile is ``"full"``) with the code revision
and elulab version that produced them; :func:`write_reference` writes them as JSON, by
default into the package (``elulab/report/reference.json``), and :func:`load_reference`
reads them back. The report shows them beside the verdicts of the run at hand, and
:func:`ledger_markdown` prints the README's verdict table from them, so no verdict is
ever typed by hand.

File format (``format`` 1)::

    {"format": 1, "created": "2026-01-01T00:00:00Z", "profile": "full",
     "experiments": {"dead_neurons": {"title": ..., "claims": [...], "profile": "full",
        "config_hash": ..., "version": 1, "seeds": [0, 1, 2, 3, 4],
        "revisions": ["<sha>"], "elulab": "0.1.0", "summarised": "2026-...Z",
        "verdicts": [{"claim": "C1", "status": "supported", "qualifier": "",
                      "effect": 0.148, "ci_low": 0.116, "ci_high": 0.179,
                      "n_seeds": 5, "effect_name": ..., "summary": ...}]}}}

Example:
    >>> import tempfile, pathlib
    >>> from elulab.lab.store import Store
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> Store(d / "s.sqlite").close()
    >>> ref = build_reference(d / "s.sqlite")
    >>> ref.experiments, ref.lookup("dead_neurons", "C1")
    ({}, None)
    >>> load_reference(write_reference(ref, d / "ref.json")) == ref
    True
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "REFERENCE_FORMAT",
    "Reference",
    "ReferenceEntry",
    "ReferenceError",
    "ReferenceVerdict",
    "between_markers",
    "build_reference",
    "bundled_reference_path",
    "ledger_markdown",
    "load_reference",
    "merge_references",
    "replace_between_markers",
    "write_reference",
]

REFERENCE_FORMAT = 1
BEGIN_MARKER = "<!-- verdicts:begin -->"
END_MARKER = "<!-- verdicts:end -->"


class ReferenceError(ValueError):
    """A reference file or store that cannot be read; the message names what was wrong."""


def _iso(t: float) -> str:
    stamp = _dt.datetime.fromtimestamp(float(t), tz=_dt.timezone.utc)
    return stamp.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _json_num(v: float) -> float | None:
    return None if not math.isfinite(v) else float(v)


@dataclass(frozen=True)
class ReferenceVerdict:
    """One full-profile verdict: the fields of :class:`elulab.lab.verdicts.Verdict` a
    reader needs (its sub-claim checks are left in the store)."""

    claim: str
    status: str
    effect: float
    ci_low: float
    ci_high: float
    n_seeds: int
    summary: str = ""
    effect_name: str = ""
    qualifier: str = ""

    @property
    def label(self) -> str:
        """The status with its qualifier, e.g. ``"supported (small)"``."""
        return f"{self.status} ({self.qualifier})" if self.qualifier else self.status

    def __eq__(self, other: object) -> bool:  # NaN effects compare equal
        if not isinstance(other, ReferenceVerdict):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))

    def to_json(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "status": self.status,
            "qualifier": self.qualifier,
            "effect": _json_num(self.effect),
            "ci_low": _json_num(self.ci_low),
            "ci_high": _json_num(self.ci_high),
            "n_seeds": self.n_seeds,
            "effect_name": self.effect_name,
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ReferenceVerdict:
        return cls(
            claim=str(d["claim"]),
            status=str(d["status"]),
            effect=_num(d.get("effect")),
            ci_low=_num(d.get("ci_low")),
            ci_high=_num(d.get("ci_high")),
            n_seeds=int(d.get("n_seeds") or 0),
            summary=str(d.get("summary") or ""),
            effect_name=str(d.get("effect_name") or ""),
            qualifier=str(d.get("qualifier") or ""),
        )


@dataclass(frozen=True)
class ReferenceEntry:
    """The reference of one experiment: its newest full-profile summary."""

    experiment: str
    title: str
    claims: tuple[str, ...]
    profile: str
    config_hash: str
    version: int | None
    seeds: tuple[int, ...]
    revisions: tuple[str | None, ...]
    elulab: str
    summarised: str
    verdicts: tuple[ReferenceVerdict, ...]

    @property
    def revision(self) -> str:
        """The one code revision behind the verdicts, or ``"mixed"`` / ``"unknown"``."""
        known = sorted({str(r) for r in self.revisions if r})
        if len(set(self.revisions)) > 1:
            return "mixed"
        return known[0] if known else "unknown"

    def verdict(self, claim: str) -> ReferenceVerdict | None:
        for v in self.verdicts:
            if v.claim == claim:
                return v
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "claims": list(self.claims),
            "profile": self.profile,
            "config_hash": self.config_hash,
            "version": self.version,
            "seeds": list(self.seeds),
            "revisions": list(self.revisions),
            "elulab": self.elulab,
            "summarised": self.summarised,
            "verdicts": [v.to_json() for v in self.verdicts],
        }

    @classmethod
    def from_json(cls, name: str, d: Mapping[str, Any]) -> ReferenceEntry:
        return cls(
            experiment=name,
            title=str(d.get("title") or name),
            claims=tuple(str(c) for c in d.get("claims", [])),
            profile=str(d.get("profile") or "full"),
            config_hash=str(d.get("config_hash") or ""),
            version=None if d.get("version") is None else int(d["version"]),
            seeds=tuple(int(s) for s in d.get("seeds", [])),
            revisions=tuple(None if r is None else str(r) for r in d.get("revisions", [])),
            elulab=str(d.get("elulab") or ""),
            summarised=str(d.get("summarised") or ""),
            verdicts=tuple(ReferenceVerdict.from_json(v) for v in d.get("verdicts", [])),
        )


@dataclass(frozen=True)
class Reference:
    """Reference verdicts by experiment (see the module docstring for the file format).

    Args:
        experiments: ``{experiment name: ReferenceEntry}``.
        created: when the file was written (ISO 8601 UTC), ``""`` for none.
        profile: the profile the verdicts come from (``"full"``).
        source: where it was read from (not written to the file).
    """

    experiments: dict[str, ReferenceEntry] = field(default_factory=dict)
    created: str = ""
    profile: str = "full"
    source: str = field(default="", compare=False)

    def lookup(self, experiment: str, claim: str) -> tuple[ReferenceEntry, ReferenceVerdict] | None:
        """The entry and verdict of ``experiment`` on ``claim``, or None."""
        entry = self.experiments.get(experiment)
        verdict = entry.verdict(claim) if entry is not None else None
        return None if verdict is None else (entry, verdict)  # type: ignore[return-value]

    def for_claim(self, claim: str) -> list[tuple[ReferenceEntry, ReferenceVerdict]]:
        """Every (entry, verdict) on ``claim``, in order of experiment name."""
        found = [self.lookup(name, claim) for name in sorted(self.experiments)]
        return [f for f in found if f is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REFERENCE_FORMAT,
            "created": self.created,
            "profile": self.profile,
            "experiments": {k: self.experiments[k].to_json() for k in sorted(self.experiments)},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any], source: str = "") -> Reference:
        fmt = d.get("format")
        if fmt != REFERENCE_FORMAT:
            raise ReferenceError(
                f"reference {source or '(data)'}: format {fmt!r} is not supported "
                f"(this elulab reads format {REFERENCE_FORMAT})"
            )
        exps = d.get("experiments", {})
        if not isinstance(exps, Mapping):
            raise ReferenceError(f"reference {source or '(data)'}: 'experiments' must be an object")
        return cls(
            experiments={str(k): ReferenceEntry.from_json(str(k), v) for k, v in exps.items()},
            created=str(d.get("created") or ""),
            profile=str(d.get("profile") or "full"),
            source=source,
        )


def bundled_reference_path() -> Path:
    """Where the reference shipped with elulab lives (``elulab/report/reference.json``)."""
    return Path(str(resources.files("elulab.report").joinpath("reference.json")))


def build_reference(store_path: str | os.PathLike[str], *, profile: str = "full") -> Reference:
    """The newest summary of ``profile`` of every experiment in a store, as a Reference.

    Only summaries of that profile are taken (a quick run never becomes the
    reference). ``created`` is the newest of their summary times, so building twice
    from one store gives the same file.

    Raises:
        ReferenceError: the store is missing or not an elulab store.
    """
    from ..lab.store import Store, StoreError

    path = Path(store_path)
    if not path.is_file():
        raise ReferenceError(f"result store not found: {path}")
    try:
        store = Store(path, create=False, readonly=True)
    except StoreError as e:
        raise ReferenceError(f"cannot open result store {path}: {e}") from None
    entries: dict[str, ReferenceEntry] = {}
    newest = 0.0
    try:
        for s in store.summaries():  # latest first
            if s.profile != profile or s.experiment in entries:
                continue
            newest = max(newest, float(s.created_at))
            env = s.env if isinstance(s.env, Mapping) else {}
            entries[s.experiment] = ReferenceEntry(
                experiment=s.experiment,
                title=str(s.title or s.experiment),
                claims=tuple(str(c) for c in s.claims),
                profile=s.profile,
                config_hash=s.config_hash,
                version=s.version,
                seeds=tuple(int(x) for x in s.seeds),
                revisions=tuple(s.revisions),
                elulab=str(env.get("elulab") or ""),
                summarised=_iso(s.created_at),
                verdicts=tuple(
                    ReferenceVerdict(
                        claim=str(v.claim),
                        status=str(v.status),
                        effect=float(v.effect),
                        ci_low=float(v.ci_low),
                        ci_high=float(v.ci_high),
                        n_seeds=int(v.n_seeds),
                        summary=str(v.summary or ""),
                        effect_name=str(v.effect_name or ""),
                        qualifier=str(getattr(v, "qualifier", "") or ""),
                    )
                    for v in s.verdicts
                ),
            )
    except StoreError as e:
        raise ReferenceError(f"cannot read result store {path}: {e}") from None
    finally:
        store.close()
    return Reference(
        experiments=dict(sorted(entries.items())),
        created=_iso(newest) if entries else "",
        profile=profile,
        source=str(path),
    )


def merge_references(references: Sequence[Reference]) -> Reference:
    """One reference from several (e.g. built from several stores): per experiment the
    entry summarised last; ``created`` is the newest.

    Example:
        >>> merge_references([Reference(), Reference(created="2026-01-01T00:00:00Z")]).created
        '2026-01-01T00:00:00Z'
    """
    refs = list(references)
    if not refs:
        return Reference()
    merged: dict[str, ReferenceEntry] = {}
    for ref in refs:
        for name, entry in ref.experiments.items():
            if name not in merged or entry.summarised > merged[name].summarised:
                merged[name] = entry
    return Reference(
        experiments=merged,
        created=max(r.created for r in refs),
        profile=refs[0].profile,
    )


def write_reference(reference: Reference, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``reference`` as JSON (sorted keys, 2-space indent); default: the bundled file.

    Returns:
        The path written.
    """
    out = Path(path) if path is not None else bundled_reference_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(reference.to_json(), indent=2, sort_keys=True, allow_nan=False)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out


def load_reference(path: str | os.PathLike[str] | None = None) -> Reference:
    """Read a reference file; ``None``: the one shipped with elulab (empty when absent).

    Raises:
        ReferenceError: a given file is missing, or a file is not a reference.
    """
    where = Path(path) if path is not None else bundled_reference_path()
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path is None:
            return Reference(source=str(where))
        raise ReferenceError(f"reference file not found: {where}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ReferenceError(f"cannot read reference file {where}: {e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ReferenceError(f"reference file {where} is not JSON: {e}") from None
    if not isinstance(data, Mapping):
        raise ReferenceError(f"reference file {where} must hold a JSON object")
    try:
        return Reference.from_json(data, source=str(where))
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ReferenceError):
            raise
        raise ReferenceError(f"reference file {where}: bad entry ({e})") from None


# -- the ledger table -------------------------------------------------------------------


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _effect_text(v: ReferenceVerdict) -> str:
    from ..lab.stats import format_number

    if not math.isfinite(v.effect):
        return "n/a"
    value = format_number(v.effect)
    if math.isfinite(v.ci_low) and math.isfinite(v.ci_high):
        value += f" [{format_number(v.ci_low)}, {format_number(v.ci_high)}]"
    return value


def _short_rev(rev: str) -> str:
    if rev in ("mixed", "unknown"):
        return rev
    dirty = rev.endswith("-dirty")
    return rev[: -len("-dirty")][:10] + "-dirty" if dirty else rev[:10]


def ledger_markdown(
    reference: Reference,
    claim_order: Sequence[str] = (),
    expected: Mapping[str, tuple[Sequence[str], int]] | None = None,
) -> str:
    """The verdict table of the README, in Markdown, from ``reference``.

    One row per (claim, experiment) with a reference verdict, claims in
    ``claim_order`` (then the others by id), then a line naming the code revisions
    and elulab versions behind them. With no verdicts, one sentence says so.

    ``expected`` (``{experiment: (claims, current version)}``, e.g. from the registry)
    adds a row for every experiment the reference lacks ("no full-profile run yet"),
    and marks a reference verdict whose experiment version is not the current one as
    stale, so the table never passes an old rule's verdict off as the current one.

    Example:
        >>> print(ledger_markdown(Reference()))
        No full-profile verdicts are recorded yet: run the full profiles, then `make ledger`.
    """
    rank = {c: i for i, c in enumerate(claim_order)}
    rows: list[tuple[Any, str, ReferenceEntry, ReferenceVerdict]] = []
    pending: list[tuple[Any, str, str]] = []
    for name, entry in reference.experiments.items():
        for v in entry.verdicts:
            rows.append(((rank.get(v.claim, len(rank)), _natural(v.claim)), name, entry, v))
    for name, (claims, version) in (expected or {}).items():
        entry = reference.experiments.get(name)
        if entry is not None and entry.version == version:
            continue
        why = (
            "no full-profile run yet"
            if entry is None
            else f"rule changed (version {version}); the full run of version {entry.version} is below"
        )
        for c in claims:
            pending.append(
                (
                    (rank.get(c, len(rank)), _natural(c)),
                    name,
                    f"| {_cell(c)} | `{_cell(name)}` | — | {why} | — | — |",
                )
            )
    if not rows and not pending:
        return (
            f"No {reference.profile}-profile verdicts are recorded yet: run the "
            f"{reference.profile} profiles, then `make ledger`."
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    lines = [
        "| claim | experiment | verdict | effect [CI] | seeds | what the effect measures |",
        "|---|---|---|---|---|---|",
    ]
    stale = {
        n
        for n, (_, ver) in (expected or {}).items()
        if n in reference.experiments and reference.experiments[n].version != ver
    }
    body = [
        (k, n, f"| {_cell(v.claim)} | `{_cell(n)}` | {_cell(v.label)}"
               + (f" (version {e.version}, stale)" if n in stale else "")
               + f" | {_cell(_effect_text(v))} | {v.n_seeds} | {_cell(v.effect_name) or '—'} |")
        for k, n, e, v in rows
    ] + pending  # fmt: skip
    body.sort(key=lambda r: (r[0], r[1]))
    lines.extend(line for _, _, line in body)
    if not rows:
        return "\n".join(lines)
    revisions = sorted({_short_rev(e.revision) for _, _, e, _ in rows})
    versions = sorted({e.elulab for _, _, e, _ in rows if e.elulab})
    lines.append("")
    lines.append(
        f"Generated by `elulab ledger` from the {reference.profile}-profile summaries in "
        f"`src/elulab/report/reference.json` (code {', '.join(revisions)}"
        + (f"; elulab {', '.join(versions)}" if versions else "")
        + (f"; newest summary {reference.created}" if reference.created else "")
        + "); do not edit by hand: `make ledger` regenerates it."
    )
    return "\n".join(lines)


def _natural(s: str) -> list[Any]:
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


def replace_between_markers(text: str, table: str) -> str:
    """``text`` with what lies between :data:`BEGIN_MARKER` and :data:`END_MARKER`
    replaced by ``table`` (the markers stay, each on its own line).

    Raises:
        ReferenceError: the markers are missing, repeated or out of order.

    Example:
        >>> replace_between_markers("a\\n<!-- verdicts:begin -->\\nold\\n<!-- verdicts:end -->\\nb", "new")
        'a\\n<!-- verdicts:begin -->\\nnew\\n<!-- verdicts:end -->\\nb'
    """
    from ..lab.costs import replace_between_markers as replace

    try:
        return replace(text, table, BEGIN_MARKER, END_MARKER)
    except ValueError as e:
        raise ReferenceError(str(e)) from None


def between_markers(text: str) -> str:
    """What lies between the markers of ``text``, stripped (see :func:`replace_between_markers`)."""
    if text.count(BEGIN_MARKER) != 1 or text.count(END_MARKER) != 1:
        raise ReferenceError(f"need exactly one {BEGIN_MARKER} and one {END_MARKER} line")
    return text.split(BEGIN_MARKER)[1].split(END_MARKER)[0].strip()
