"""Parse the claim ledger (``CLAIMS.md``): the paragraphs above the table and its rows.

The ledger is a Markdown file with one pipe table whose columns are
``id | claim | library piece | what must be measured``. Each row becomes a
:class:`Claim`; the paragraphs before the table are kept as the ledger's preamble.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["Claim", "ClaimsError", "Ledger", "default_claims_text", "parse_claims"]

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


class ClaimsError(ValueError):
    """A claims file that cannot be parsed; the message names what was wrong."""


@dataclass(frozen=True)
class Claim:
    """One row of the claims table.

    Args:
        id: the claim id, e.g. ``"C2"``.
        text: the claim, in short (Markdown inline text).
        library: the library piece it needs.
        measure: what must be measured.
    """

    id: str
    text: str
    library: str
    measure: str

    @property
    def title(self) -> str:
        """A short title: the text before the first colon (e.g. ``"Dead neurons"``)."""
        head, sep, tail = self.text.partition(":")
        if sep and 0 < len(head.strip()) <= 60 and tail.strip():
            return head.strip()
        return self.id

    @property
    def body(self) -> str:
        """The claim text without its title, starting with a capital letter."""
        head, sep, tail = self.text.partition(":")
        if sep and 0 < len(head.strip()) <= 60 and tail.strip():
            tail = tail.strip()
            return tail[0].upper() + tail[1:]
        return self.text


@dataclass(frozen=True)
class Ledger:
    """The parsed ledger: its title, the paragraphs above the table, the claims in order."""

    title: str
    preamble: tuple[str, ...]
    claims: tuple[Claim, ...]
    epilogue: tuple[str, ...] = ()

    def get(self, claim_id: str) -> Claim | None:
        for c in self.claims:
            if c.id == claim_id:
                return c
        return None


def default_claims_text() -> str:
    """The bundled copy of ``CLAIMS.md`` (package data of :mod:`elulab.report`)."""
    return resources.files("elulab.report").joinpath("CLAIMS.md").read_text(encoding="utf-8")


def _cells(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|"):
        s = s[:-1]
    # a pipe escaped as \| belongs to the cell
    parts = re.split(r"(?<!\\)\|", s)
    return [p.strip().replace("\\|", "|") for p in parts]


def _is_separator(line: str) -> bool:
    cells = _cells(line)
    return bool(cells) and all(re.fullmatch(r":?-{3,}:?", c) for c in cells)


def _paragraphs(lines: list[str]) -> tuple[str, ...]:
    paras: list[str] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paras.append(" ".join(current))
            current = []
    if current:
        paras.append(" ".join(current))
    return tuple(paras)


def parse_claims(source: str | Path | None = None) -> Ledger:
    """Parse a claims ledger.

    Args:
        source: a path to a Markdown file, or None for the bundled ``CLAIMS.md``.

    Returns:
        The :class:`Ledger` with its claims in table order.

    Raises:
        ClaimsError: no table, a table without the four columns, a bad or repeated id.

    Example:
        >>> ledger = parse_claims()
        >>> ledger.claims[0].id, ledger.claims[0].title
        ('C1', 'Dead neurons')
    """
    if source is None:
        text, where = default_claims_text(), "bundled CLAIMS.md"
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ClaimsError(f"claims file not found: {path}") from None
        except (IsADirectoryError, UnicodeDecodeError) as e:
            raise ClaimsError(f"cannot read claims file {path}: {e}") from None
        where = str(path)
    lines = text.splitlines()
    start = next(
        (
            i
            for i in range(len(lines) - 1)
            if lines[i].lstrip().startswith("|") and _is_separator(lines[i + 1])
        ),
        None,
    )
    if start is None:
        raise ClaimsError(f"{where}: no Markdown table found (need columns id | claim | ...)")
    header = [h.lower() for h in _cells(lines[start])]
    if len(header) < 4 or header[0] != "id" or not header[1].startswith("claim"):
        raise ClaimsError(
            f"{where}: the table must have the columns id | claim | library piece | "
            f"what must be measured, found {' | '.join(header)}"
        )
    claims: list[Claim] = []
    end = start + 2
    while end < len(lines) and lines[end].lstrip().startswith("|"):
        cells = _cells(lines[end])
        if len(cells) != len(header):
            raise ClaimsError(
                f"{where}, line {end + 1}: {len(cells)} cells, the header has {len(header)}"
            )
        cid = cells[0]
        if not _ID.match(cid):
            raise ClaimsError(f"{where}, line {end + 1}: bad claim id {cid!r}")
        if any(c.id == cid for c in claims):
            raise ClaimsError(f"{where}, line {end + 1}: claim id {cid!r} appears twice")
        claims.append(Claim(id=cid, text=cells[1], library=cells[2], measure=cells[3]))
        end += 1
    if not claims:
        raise ClaimsError(f"{where}: the claims table has no rows")
    above = lines[:start]
    title = ""
    body: list[str] = []
    for line in above:
        if not title and line.startswith("# "):
            title = line[2:].strip()
        else:
            body.append(line)
    return Ledger(
        title=title or "Claims",
        preamble=_paragraphs(body),
        claims=tuple(claims),
        epilogue=_paragraphs(lines[end:]),
    )
