"""Tests of the static HTML report (``elulab.report``) on stores filled through the Store API."""

from __future__ import annotations

import html
import math
import re
import struct
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from elulab.lab.api import RunResult, Series, Verdict
from elulab.lab.store import Store
from elulab.report import ClaimsError, ReportError, build_report, parse_claims
from elulab.report import _build as report_build
from elulab.report import _reference as report_reference
from elulab.report._build import fmt_ci, fmt_num, inline_md
from elulab.report._figures import draw_series, series_stats
from needs import missing

ENV = {
    "python": "3.11.2",
    "torch": "2.13.0",
    "numpy": "2.1.0",
    "elulab": "0.1.0",
    "git_rev": "abc1234",
    "device": "cpu",
    "threads": 1,
}
EVIL = "<script>alert('x')</script> & co"
T0 = 1_760_000_000.0


def _png(path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2), dpi=50)
    fig.add_subplot().plot([0, 1], [1, 0])
    fig.savefig(path, format="png")


def _record(store: Store, exp: str, chash: str, seed: int, result: RunResult | None, **kw) -> None:
    store.record_run(
        exp,
        chash,
        {"steps": 10},
        seed,
        status=kw.get("status", "completed"),
        result=result,
        error=kw.get("error"),
        started_at=T0 + seed,
        finished_at=T0 + seed + 2.5,
        env=ENV,
    )


def _rnn_result(seed: int) -> RunResult:
    rng = np.random.default_rng(seed)
    lags = [0, 5, 10, 15, 20]
    return RunResult(
        metrics={"gain_relu": 0.5 + 0.01 * rng.standard_normal(), "gain_elu": 0.76},
        series={
            "gradient norm vs lag": Series(
                x=lags,
                ys={
                    "relu": [0.5 ** (lag / 5) for lag in lags],
                    "elu": [0.76 ** (lag / 5) * (1 + 0.1 * rng.random()) for lag in lags],
                },
                xlabel="time lag",
                ylabel="gradient norm",
                logy=True,
            )
        },
        tables={
            "gains": [{"activation": "relu", "gain": 0.5}, {"activation": "elu", "gain": 0.76}]
        },
    )


def make_store(path: Path) -> Store:
    """A store with five experiments covering C1, C2, C5, C7, C11 (and an unknown id)."""
    store = Store(path)
    # rnn_gradient_flow: an old summary (another config) and the latest one, with a hook figure
    store.record_summary(
        experiment="rnn_gradient_flow",
        title="RNN gradient flow",
        claims=["C2"],
        config_hash="old0000000000000",
        profile="quick",
        config={"steps": 1},
        seeds=[0],
        verdicts=[Verdict("C2", "not supported", -1.0, -2.0, -0.5, 2, "old verdict", "old")],
        env=ENV,
        created_at=T0 - 1000,
    )
    for seed in range(5):
        _record(store, "rnn_gradient_flow", "rnn0000000000001", seed, _rnn_result(seed))
    tmp = store.tmp_dir()
    _png(tmp / "hook.png")
    store.record_summary(
        experiment="rnn_gradient_flow",
        title="RNN gradient flow",
        claims=["C2"],
        config_hash="rnn0000000000001",
        profile="quick",
        config={"steps": 100, "lr": 0.001, "activations": ["relu", "elu"], "seeds": 5},
        seeds=list(range(5)),
        verdicts=[
            Verdict(
                "C2",
                "supported",
                0.2612,
                0.25,
                0.27,
                5,
                "ELU keeps gradients alive longer than ReLU.",
                "per-step gain, ELU minus ReLU",
            )
        ],
        figures=[
            {"path": "hook.png", "caption": "Drawn by the hook & kept.", "claim": "C2"},
            {"path": "lost.png", "caption": "This file was never written.", "claim": None},
        ],
        figures_tmp=tmp,
        env=ENV,
        created_at=T0,
    )
    # dead_units: seed 3 failed with an error that must be escaped
    for seed in range(5):
        if seed == 3:
            _record(
                store,
                "dead_units",
                "dead000000000001",
                seed,
                None,
                status="failed",
                error="Traceback (most recent call last):\nValueError: <boom> & co",
            )
        else:
            _record(
                store,
                "dead_units",
                "dead000000000001",
                seed,
                RunResult(metrics={"dead_relu": 0.1 * seed, "dead_elu": 0.0}),
            )
    store.record_summary(
        experiment="dead_units",
        title="Dead units on MNIST",
        claims=["C1"],
        config_hash="dead000000000001",
        profile="full",
        config={"epochs": 3, "seeds": 5},
        seeds=list(range(5)),
        verdicts=[
            Verdict(
                "C1", "not supported", -0.02, -0.05, 0.01, 4, "Few dead units.", "dead fraction"
            )
        ],
        errors=["seed 3: ValueError: <boom> & co"],
        env=ENV,
        created_at=T0 + 1,
    )
    # dead_units_cnn: covers C1 but gives no verdict; hostile title and table text
    for seed in range(2):
        _record(
            store,
            "dead_units_cnn",
            "cnn0000000000001",
            seed,
            RunResult(metrics={"acc": 0.9}, tables={"notes": [{"text": EVIL, "n": seed}]}),
        )
    store.record_summary(
        experiment="dead_units_cnn",
        title=EVIL,
        claims=["C1"],
        config_hash="cnn0000000000001",
        profile="quick",
        config={"note": EVIL, "seeds": 2},
        seeds=[0, 1],
        verdicts=[],
        env=ENV,
        created_at=T0 + 2,
    )
    # selu_fixed_point: two claims, a large table (first seed only), and a claim id not in the
    # ledger
    big = [{"layer": i, "mean": 0.01 * i, "var": 1.0} for i in range(40)]
    for seed in range(3):
        _record(
            store, "selu_fixed_point", "selu000000000001", seed, RunResult(tables={"layers": big})
        )
    store.record_summary(
        experiment="selu_fixed_point",
        title="SELU fixed point",
        claims=["C5", "C11", "Z9"],
        config_hash="selu000000000001",
        profile="quick",
        config={"depth": 64, "seeds": 3},
        seeds=[0, 1, 2],
        verdicts=[
            Verdict(
                "C5", "mixed", 1e-13, 1e-14, 3e-13, 3, "Constants match, BN wins.", "max error"
            ),
            Verdict("C11", "inconclusive", 0.01, -0.2, 0.3, 3, "CI straddles zero.", "gain"),
        ],
        env=ENV,
        created_at=T0 + 3,
    )
    # flows: one seed, NaN interval
    _record(store, "flows", "flow000000000001", 0, RunResult(metrics={"nll": 1.5}))
    store.record_summary(
        experiment="flows",
        title="ELU flows",
        claims=["C7"],
        config_hash="flow000000000001",
        profile="quick",
        config={"seeds": 1},
        seeds=[0],
        verdicts=[Verdict("C7", "inconclusive", 1.5, math.nan, math.nan, 1, "One seed.", "nll")],
        env=ENV,
        created_at=T0 + 4,
    )
    return store


# -- HTML helpers ------------------------------------------------------------------------------


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def _tags(page: Path) -> list[tuple[str, dict[str, str]]]:
    c = _Collector()
    c.feed(page.read_text(encoding="utf-8"))
    return c.tags


def _rows(index: Path) -> dict[str, list[str]]:
    """The index rows' HTML, by claim id (several rows for a claim with several experiments)."""
    text = index.read_text(encoding="utf-8")
    rows: dict[str, list[str]] = {}
    for cid, body in re.findall(
        r'<tr class="claim-row[^"]*" data-claim="([^"]+)">(.*?)</tr>', text, flags=re.S
    ):
        rows.setdefault(cid, []).append(body)
    return rows


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(autouse=True, scope="module")
def _no_bundled_reference(tmp_path_factory: pytest.TempPathFactory):
    """The tests do not depend on the reference shipped in the package: by default they
    see none (tests of the reference pass one explicitly)."""
    missing_file = tmp_path_factory.mktemp("no-reference") / "reference.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(report_reference, "bundled_reference_path", lambda: missing_file)
        yield


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("report")
    make_store(d / "results" / "elulab.sqlite").close()
    return build_report(d / "results" / "elulab.sqlite", d / "site")


# -- the claims ledger ------------------------------------------------------------------------


def test_bundled_claims_are_the_eleven_claims():
    ledger = parse_claims()
    assert [c.id for c in ledger.claims] == [f"C{i}" for i in range(1, 12)]
    c2 = ledger.get("C2")
    assert c2 is not None and c2.title == "RNN gradient flow"
    assert c2.body.startswith("Per-step gradient gain")
    assert "0.76158" in c2.text
    assert c2.measure.startswith("predicted vs measured gradient norm")
    assert ledger.title == "The claim ledger"
    assert len(ledger.preamble) == 3 and ledger.preamble[0].startswith("The source document")
    assert ledger.epilogue and ledger.epilogue[0].startswith("Every row keeps its place")


def test_bundled_claims_match_the_shared_ledger():
    shared = Path("/work/shared/CLAIMS.md")
    if not shared.exists():
        missing("no shared CLAIMS.md on this machine")
    assert parse_claims(shared) == parse_claims()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("# Title\n\nNo table here.\n", "no Markdown table"),
        ("| a | b | c | d |\n|---|---|---|---|\n| 1 | 2 | 3 | 4 |\n", "must have the columns"),
        ("| id | claim | lib | measure |\n|---|---|---|---|\n| C1 | x | y |\n", "3 cells"),
        (
            "| id | claim | lib | measure |\n|---|---|---|---|\n| C1 | a | b | c |\n| C1 | d | e | f |\n",
            "appears twice",
        ),
        (
            "| id | claim | lib | measure |\n|---|---|---|---|\n| 1 x | a | b | c |\n",
            "bad claim id",
        ),
        ("| id | claim | lib | measure |\n|---|---|---|---|\n\ntext\n", "no rows"),
    ],
)
def test_bad_claims_files_are_rejected(tmp_path, text, match):
    p = tmp_path / "CLAIMS.md"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ClaimsError, match=match):
        parse_claims(p)


def test_missing_claims_file(tmp_path):
    with pytest.raises(ClaimsError, match="not found"):
        parse_claims(tmp_path / "nope.md")
    Store(tmp_path / "s.sqlite").close()
    with pytest.raises(ReportError, match="not found"):
        build_report(tmp_path / "s.sqlite", tmp_path / "out", claims_path=tmp_path / "nope.md")


def test_claims_path_overrides_the_bundled_ledger(tmp_path):
    p = tmp_path / "claims.md"
    p.write_text(
        "# My ledger\n\nIntro with `code` and **bold**.\n\n"
        "| id | claim | library piece | what must be measured |\n|---|---|---|---|\n"
        "| C2 | Gains: ELU \\| ReLU. | a | b |\n| X1 | Other: thing. | c | d |\n",
        encoding="utf-8",
    )
    store = make_store(tmp_path / "r" / "s.sqlite")
    store.close()
    index = build_report(tmp_path / "r" / "s.sqlite", tmp_path / "site", claims_path=p)
    text = index.read_text(encoding="utf-8")
    assert "My ledger" in text and "<code>code</code>" in text and "<strong>bold</strong>" in text
    rows = _rows(index)
    # the ledger's two claims first, then the ids experiments cover that the ledger lacks
    assert list(rows) == ["C2", "X1", "C1", "C5", "C7", "C11", "Z9"]
    assert "ELU | ReLU." in rows["C2"][0]
    assert "the claims ledger has no row for it" in (index.parent / "claim-C1.html").read_text()


# -- formatting --------------------------------------------------------------------------------


def test_number_and_interval_formatting():
    assert fmt_num(0.761578) == "0.7616"
    assert fmt_num(-0.02) == "-0.02"
    assert fmt_num(1e-13) == "1e-13"
    assert fmt_num(math.nan) == "n/a" and fmt_num(None) == "n/a"
    assert fmt_num(math.inf) == "∞"
    assert fmt_num(7) == "7" and fmt_num(True) == "true"
    assert fmt_ci(0.25, 0.27) == "[0.25, 0.27]"
    assert fmt_ci(math.nan, 1.0) == "n/a"


def test_inline_markdown_escapes_everything_else():
    out = str(inline_md("a <b> & `x < y` and **bold <i>** `unclosed"))
    assert out == (
        "a &lt;b&gt; &amp; <code>x &lt; y</code> and <strong>bold &lt;i&gt;</strong> `unclosed"
    )


# -- series statistics and drawing -----------------------------------------------------------


def test_series_stats_matches_numpy_and_skips_mismatched_x():
    rng = np.random.default_rng(0)
    ys = rng.normal(size=(4, 6))
    ys[1, 2] = math.nan  # a missing value is left out of that point only
    series = [Series(x=list(range(6)), ys={"a": list(row)}) for row in ys]
    series.append(Series(x=list(range(5)), ys={"a": [0.0] * 5}))  # another x: skipped
    s = series_stats(series)
    assert s.skipped == 1 and s.n["a"] == 4
    # masked mean/sd computed independently by numpy (same arithmetic, so a tight tolerance)
    masked = np.ma.masked_invalid(ys)
    np.testing.assert_allclose(s.mean["a"], masked.mean(axis=0).filled(np.nan), rtol=1e-12)
    np.testing.assert_allclose(s.std["a"], masked.std(axis=0, ddof=1).filled(np.nan), rtol=1e-12)


def test_series_stats_single_seed_and_all_nan(tmp_path):
    s = series_stats([Series(x=[0, 1], ys={"a": [1.0, 2.0], "b": [math.nan, math.nan]})])
    assert s.mean["a"].tolist() == [1.0, 2.0]
    assert np.isnan(s.std["a"]).all() and np.isnan(s.mean["b"]).all()
    with pytest.raises(ValueError, match="2 values for 3 x values"):
        series_stats([Series(x=[0, 1, 2], ys={"a": [1.0, 2.0]})])
    with pytest.raises(ValueError, match="at least one"):
        series_stats([])
    # nothing finite to draw: no file
    empty = series_stats([Series(x=[0, 1], ys={"b": [math.nan, math.nan]})])
    assert not draw_series(empty, "t", tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()


def test_draw_series_on_log_axis_with_nonpositive_values(tmp_path):
    series = [
        Series(x=[1, 2, 3], ys={"a": [1.0, 0.0, -1.0], "b": [1e-3, 1e-2, 1e-1]}, logy=True),
        Series(x=[1, 2, 3], ys={"a": [3.0, 0.0, -1.0], "b": [2e-3, 2e-2, 2e-1]}, logy=True),
    ]
    assert draw_series(series_stats(series), "log", tmp_path / "log.png")
    w, h = _png_size(tmp_path / "log.png")
    assert w > 300 and h > 200


# -- the built site ------------------------------------------------------------------------------


def test_index_has_one_row_per_claim_and_experiment(report: Path):
    rows = _rows(report)
    assert list(rows) == [f"C{i}" for i in range(1, 12)] + ["Z9"]
    assert len(rows["C1"]) == 2  # dead_units and dead_units_cnn
    assert len(rows["C2"]) == 1  # the latest summary only
    for cid in ("C3", "C4", "C6", "C8", "C9", "C10"):
        assert len(rows[cid]) == 1
        assert 'badge-unmeasured">not yet measured<' in rows[cid][0]
        assert f'href="claim-{cid}.html"' in rows[cid][0]


def test_index_badges_effects_and_intervals(report: Path):
    rows = _rows(report)
    c2 = rows["C2"][0]
    assert 'badge-supported">supported<' in c2
    # effects to 3 significant digits, as the verdict summaries print them
    assert 'class="effect">0.261<' in c2 and 'class="ci">[0.25, 0.27]<' in c2
    assert "per-step gain, ELU minus ReLU" in c2
    assert "rnn_gradient_flow" in c2 and ">quick<" in c2 and ">5<" in c2
    assert "old verdict" not in report.read_text(encoding="utf-8")
    assert 'badge-not-supported">not supported<' in rows["C1"][0]
    assert ">[-0.05, 0.01]<" in rows["C1"][0] and ">full<" in rows["C1"][0]
    assert 'badge-no-verdict">no verdict<' in rows["C1"][1]
    assert 'badge-mixed">mixed<' in rows["C5"][0] and ">[1e-14, 3e-13]<" in rows["C5"][0]
    assert 'badge-inconclusive">inconclusive<' in rows["C11"][0]
    assert ">n/a<" in rows["C7"][0]  # one seed: no interval


def test_index_header(report: Path):
    text = report.read_text(encoding="utf-8")
    from elulab import __version__

    assert re.search(r"<dt>generated</dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</dd>", text)
    assert f"<dt>elulab</dt><dd>{__version__}</dd>" in text
    assert "elulab.sqlite</code>" in text
    assert "Nothing has been run yet" not in text


def test_every_link_and_image_resolves(report: Path):
    site = report.parent
    pages = sorted(site.glob("*.html"))
    assert [p.name for p in pages] == sorted(
        ["index.html", *(f"claim-C{i}.html" for i in range(1, 12)), "claim-Z9.html"]
    )
    assert _check_links(site) == 2  # C2: the hook's figure and the drawn series


def _check_links(site: Path) -> int:
    """Every link, anchor and image of every page resolves inside ``site``; the images."""
    pages = sorted(site.glob("*.html"))
    n_img = 0
    for page in pages:
        tags = _tags(page)
        ids = {a.get("id") for _, a in tags}
        for tag, attrs in tags:
            ref = attrs.get("href") if tag in ("a", "link") else attrs.get("src")
            if tag == "img":
                n_img += 1
                assert ref, f"{page.name}: <img> without src"
            if not ref or ref.startswith("data:"):
                continue
            parts = urlsplit(ref)
            assert not parts.scheme and not parts.netloc, f"{page.name}: external URL {ref}"
            target = (page.parent / unquote(parts.path)) if parts.path else page
            assert target.is_file(), f"{page.name}: {ref} does not resolve"
            if parts.fragment:
                target_ids = ids if target == page else {a.get("id") for _, a in _tags(target)}
                assert parts.fragment in target_ids, f"{page.name}: anchor {ref} missing"
            if tag == "img":
                w, h = _png_size(target)
                assert w > 0 and h > 0
    return n_img


def test_claim_page_contents(report: Path):
    page = (report.parent / "claim-C2.html").read_text(encoding="utf-8")
    assert "RNN gradient flow" in page and "0.76158" in page
    assert "predicted vs measured gradient norm as a function of time lag" in page
    assert "ELU keeps gradients alive longer than ReLU." in page
    # the hook's figure (copied) and the series drawn by the report
    assert 'src="figures/rnn_gradient_flow/hook.png"' in page
    assert "Drawn by the hook &amp; kept." in page
    assert 'src="figures/rnn_gradient_flow/series-gradient-norm-vs-lag.png"' in page
    assert (
        "Mean over 5 seeds per curve, band: ×/÷ one geometric standard deviation over seeds; "
        "log scale, geometric mean of the positive values." in page
    )
    assert "Gradient norm" in page  # the drawn series' title: its y label, in words
    assert "figure file missing from the store" in page and "This file was never written." in page
    # small table: all seeds with a seed column; per-seed metrics; config; env; seeds
    assert "Table: gains" in page and "all 5 seeds" in page
    assert "gain_<wbr>relu" in page and "seed 4" in page
    assert "<th>activations</th><td>relu, elu</td>" in page and "<th>lr</th><td>0.001</td>" in page
    assert "<th>git_rev</th><td>abc1234</td>" in page and "<th>threads</th><td>1</td>" in page
    assert "<th>torch</th><td>2.13.0</td>" in page
    for seed in range(5):
        assert f"<code>{seed}</code>" in page
    assert "Failed runs" not in page


def test_claim_page_failed_runs_and_escaping(report: Path):
    page = (report.parent / "claim-C1.html").read_text(encoding="utf-8")
    assert "Failed runs (1)" in page
    assert "ValueError: &lt;boom&gt; &amp; co" in page and "<boom>" not in page
    assert "Errors recorded with the summary (1)" in page
    assert "No completed run for seed 3." in page
    assert "This experiment lists C1 but gave no verdict on it." in page
    # a hostile title, config value and table cell appear as text, never as markup
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<script>" not in report.read_text(encoding="utf-8")


def test_large_tables_show_the_first_seed(report: Path):
    page = (report.parent / "claim-C5.html").read_text(encoding="utf-8")
    assert "Table: layers" in page and "seed 0 (the first of 3 seeds)" in page
    table = page.split("Table: layers", 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 41  # header + 40 rows of one seed
    assert "also covers" in page and 'href="claim-C11.html#exp-selu_fixed_point"' in page
    c7 = (report.parent / "claim-C7.html").read_text(encoding="utf-8")
    assert '<strong>1.5</strong> <span class="muted">(no interval)</span>' in c7
    assert "1 seed · " in c7 and "1 seeds" not in c7


def test_empty_store_says_nothing_has_run(tmp_path):
    Store(tmp_path / "s.sqlite").close()
    index = build_report(tmp_path / "s.sqlite", tmp_path / "site")
    text = index.read_text(encoding="utf-8")
    assert "Nothing has been run yet" in text
    rows = _rows(index)
    assert list(rows) == [f"C{i}" for i in range(1, 12)]
    assert all("not yet measured" in r[0] for r in rows.values())
    assert (tmp_path / "site" / "claim-C11.html").is_file()
    assert not (tmp_path / "site" / "figures").exists()


def test_missing_or_foreign_store_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="result store not found"):
        build_report(tmp_path / "none.sqlite", tmp_path / "site")
    (tmp_path / "foreign.sqlite").write_text("not a database", encoding="utf-8")
    with pytest.raises(ReportError, match="not an elulab store"):
        build_report(tmp_path / "foreign.sqlite", tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_rebuild_replaces_an_old_report_but_never_a_foreign_folder(tmp_path):
    Store(tmp_path / "s.sqlite").close()
    site = tmp_path / "site"
    build_report(tmp_path / "s.sqlite", site)
    (site / "stale.html").write_text("old", encoding="utf-8")
    build_report(tmp_path / "s.sqlite", site)
    assert not (site / "stale.html").exists() and (site / "index.html").is_file()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious", encoding="utf-8")
    with pytest.raises(ReportError, match="refusing to replace"):
        build_report(tmp_path / "s.sqlite", foreign)
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ReportError, match="not a folder"):
        build_report(tmp_path / "s.sqlite", tmp_path / "file")
    # no temporary or old folders left beside the report (SQLite's -wal/-shm may be)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("s.sqlite")) == [
        "file",
        "mine",
        "site",
    ]


def test_failed_build_leaves_the_previous_report(tmp_path, monkeypatch):
    Store(tmp_path / "s.sqlite").close()
    site = tmp_path / "site"
    build_report(tmp_path / "s.sqlite", site)
    before = (site / "index.html").read_text(encoding="utf-8")

    def broken(store, store_path, ledger, out, *rest):
        (out / "index.html").write_text("half", encoding="utf-8")
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_build, "_render", broken)
    time.sleep(1.1)  # the header's time stamp has seconds: a rebuild would differ
    with pytest.raises(RuntimeError, match="disk full"):
        build_report(tmp_path / "s.sqlite", site)
    assert (site / "index.html").read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("s.sqlite")) == [
        "site"
    ]


def test_report_reads_the_store_without_importing_experiments(tmp_path):
    make_store(tmp_path / "s.sqlite").close()
    code = (
        "import sys\n"
        "from elulab.report import build_report\n"
        f"build_report({str(tmp_path / 's.sqlite')!r}, {str(tmp_path / 'site')!r})\n"
        "assert not [m for m in sys.modules if m.startswith('elulab.experiments')]\n"
        "assert not [m for m in sys.modules if m == 'matplotlib.pyplot']\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert html.unescape((tmp_path / "site" / "index.html").read_text()).count("supported") >= 2


def test_report_of_a_sweep_run_by_the_lab(tmp_path):
    """End to end: the lab's runner fills the store (a hook figure, a failed seed)."""
    from elulab.lab.runner import run_experiment
    from lab_toy import Toy

    with Store(tmp_path / "s.sqlite") as store:
        run_experiment(
            Toy(), store=store, overrides={"figure": "true", "fail_seeds": "1", "seeds": "3"}
        )
    index = build_report(tmp_path / "s.sqlite", tmp_path / "site")
    rows = _rows(index)
    assert "lab_toy" in rows["T1"][0] and ">2<" in rows["T1"][0]  # two seeds completed
    page = (index.parent / "claim-T1.html").read_text(encoding="utf-8")
    assert 'src="figures/lab_toy/draws.png"' in page and "One uniform draw per seed." in page
    assert 'src="figures/lab_toy/series-norm.png"' in page
    assert "Failed runs (1)" in page and "RuntimeError: seed 1 fails on purpose" in page
    for name in ("draws.png", "series-norm.png"):
        w, h = _png_size(index.parent / "figures" / "lab_toy" / name)
        assert w > 100 and h > 100


# -- code revisions ----------------------------------------------------------------------------

CLEAN = "1111111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
OTHER = "2222222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


def _revision_store(path: Path) -> None:
    """Three experiments: runs of two revisions (C1), of dirty code (C2), of one commit (C3)."""
    with Store(path) as store:
        for exp, claim, revs in [
            ("mixed_exp", "C1", [CLEAN, OTHER, CLEAN]),
            ("dirty_exp", "C2", [f"{CLEAN}-dirty"] * 2),
            ("clean_exp", "C3", [CLEAN] * 2),
        ]:
            for seed, rev in enumerate(revs):
                store.record_run(
                    exp,
                    f"{exp}-hash",
                    {"steps": 1},
                    seed,
                    status="completed",
                    result=RunResult(metrics={"m": float(seed)}),
                    started_at=T0,
                    finished_at=T0 + 1,
                    env={**ENV, "git": rev},
                    version=3,
                )
            store.record_summary(
                experiment=exp,
                title=exp,
                claims=[claim],
                config_hash=f"{exp}-hash",
                profile="quick",
                config={"steps": 1},
                seeds=list(range(len(revs))),
                verdicts=[Verdict(claim, "supported", 1.0, 0.5, 1.5, len(revs), "ok", "gap")],
                env=ENV,
                created_at=T0,
            )


def test_mixed_revisions_are_flagged(tmp_path):
    _revision_store(tmp_path / "s.sqlite")
    index = build_report(tmp_path / "s.sqlite", tmp_path / "site")
    rows = _rows(index)
    assert "mixed code revisions" in rows["C1"][0] and "mixed code revisions" in rows["C2"][0]
    assert "mixed code revisions" not in rows["C3"][0]
    pages = {c: (index.parent / f"claim-{c}.html").read_text("utf-8") for c in ("C1", "C2", "C3")}
    assert 'class="notice revision-warning"' in pages["C1"]
    assert "the runs come from 2 different git revisions (1111111111, 2222222222)" in pages["C1"]
    assert "uncommitted changes (1111111111-dirty)" in pages["C2"]
    assert "revision-warning" not in pages["C3"]
    # the revision of every run, in the run table, with the full revision on hover
    runs = re.search(r'<table class="data runs">(.*?)</table>', pages["C1"], flags=re.S)
    assert runs is not None and "<th>revision</th>" in runs.group(1)
    cells = re.findall(r'<code class="revision" title="([0-9a-f-]+)">([^<]+)</code>', runs.group(1))
    assert cells == [(CLEAN, "1111111111"), (OTHER, "2222222222"), (CLEAN, "1111111111")]
    assert "version 3" in pages["C3"]


def test_check_out_dir_refuses_unwritable_folders(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ReportError, match="is not a folder"):
        report_build.check_out_dir(blocker / "site")
    with pytest.raises(ReportError, match="exists and is not a folder"):
        report_build.check_out_dir(blocker)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = report_build.os.access
    monkeypatch.setattr(
        report_build.os,
        "access",
        lambda p, mode: False if Path(p) == locked else real_access(p, mode),
    )
    with pytest.raises(ReportError, match=r"locked is not writable"):
        report_build.check_out_dir(locked / "deep" / "site")
    assert not (locked / "deep").exists()
    assert report_build.check_out_dir(tmp_path / "new" / "site") == tmp_path / "new" / "site"
    assert not (tmp_path / "new").exists()  # checking writes nothing


# -- the reference: full-profile verdicts beside the run at hand --------------------------------

REF_REV = "3333333333cccccccccccccccccccccccccccccc"


def _summary(store: Store, exp: str, claim: str, profile: str, created: float, **verdict) -> None:
    v = Verdict(
        claim=claim,
        status=verdict.get("status", "supported"),
        effect=verdict.get("effect", 0.148),
        ci_low=verdict.get("ci_low", 0.116),
        ci_high=verdict.get("ci_high", 0.179),
        n_seeds=verdict.get("n_seeds", 5),
        summary=verdict.get("summary", "The full-profile summary."),
        effect_name=verdict.get("effect_name", "gain difference"),
        qualifier=verdict.get("qualifier", ""),
    )
    chash = f"{exp}-{profile}-{int(created)}"
    for seed in range(v.n_seeds):
        store.record_run(
            exp,
            chash,
            {"steps": 1},
            seed,
            status="completed",
            result=RunResult(metrics={"m": float(seed)}),
            started_at=created,
            finished_at=created + 1,
            env={**ENV, "git": REF_REV},
            version=2,
        )
    store.record_summary(
        experiment=exp,
        title=f"{exp} title",
        claims=[claim],
        config_hash=chash,
        profile=profile,
        config={"steps": 1},
        seeds=list(range(v.n_seeds)),
        verdicts=[v],
        env={**ENV, "git": REF_REV, "elulab": "9.9.9"},
        created_at=created,
        version=2,
    )


def make_reference_store(path: Path) -> Path:
    """Full and quick summaries: the newest full one of each experiment is the reference."""
    with Store(path) as store:
        # rnn_gradient_flow: an old full summary, the reference, then a newer quick one
        _summary(store, "rnn_gradient_flow", "C2", "full", T0 - 500, status="not supported")
        _summary(store, "rnn_gradient_flow", "C2", "full", T0 - 100, qualifier="small")
        _summary(store, "rnn_gradient_flow", "C2", "quick", T0 + 50, status="mixed", n_seeds=2)
        # resnets: measured only in the reference, not in the store of the report
        _summary(
            store,
            "resnets",
            "C4",
            "full",
            T0 - 50,
            status="mixed",
            effect=-1.5,
            ci_low=-2.25,
            ci_high=-0.75,
            effect_name="a | b",
            summary="Post-act decays.",
        )
        # quick only: never a reference
        _summary(store, "flows", "C7", "quick", T0 - 10)
    return path


def test_reference_takes_the_newest_full_summary_of_each_experiment(tmp_path):
    from elulab.report import build_reference, load_reference, write_reference

    ref = build_reference(make_reference_store(tmp_path / "ref.sqlite"))
    assert sorted(ref.experiments) == ["resnets", "rnn_gradient_flow"]
    entry = ref.experiments["rnn_gradient_flow"]
    assert (entry.profile, entry.version, entry.elulab, entry.revision) == (
        "full",
        2,
        "9.9.9",
        REF_REV,
    )
    assert entry.summarised == "2025-10-09T08:51:40Z" and entry.seeds == (0, 1, 2, 3, 4)
    (v,) = entry.verdicts
    assert (v.claim, v.status, v.qualifier, v.label) == (
        "C2",
        "supported",
        "small",
        "supported (small)",
    )
    assert (v.effect, v.ci_low, v.ci_high, v.n_seeds) == (0.148, 0.116, 0.179, 5)
    assert (v.effect_name, v.summary) == ("gain difference", "The full-profile summary.")
    assert ref.lookup("rnn_gradient_flow", "C3") is None and ref.lookup("flows", "C7") is None
    assert ref.created == "2025-10-09T08:52:30Z"  # the newest summary taken, not "now"
    # the file round-trips, and building twice gives the same bytes
    a = write_reference(ref, tmp_path / "a.json").read_bytes()
    again = build_reference(tmp_path / "ref.sqlite")
    assert write_reference(again, tmp_path / "b.json").read_bytes() == a
    assert load_reference(tmp_path / "a.json") == ref
    assert b"NaN" not in a and b"/tmp" not in a  # strict JSON, no machine paths


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (None, "reference file not found"),
        ("{nope", "is not JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"format": 99, "experiments": {}}', "format 99 is not supported"),
        ('{"format": 1, "experiments": {"x": {"verdicts": [{}]}}}', "bad entry"),
    ],
)
def test_bad_reference_files_are_one_line_errors(tmp_path, text, match):
    from elulab.report import ReferenceError, load_reference

    path = tmp_path / "ref.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ReferenceError, match=match) as e:
        load_reference(path)
    assert "\n" not in str(e.value)
    make_store(tmp_path / "s.sqlite").close()
    with pytest.raises(ReportError, match=match):
        build_report(tmp_path / "s.sqlite", tmp_path / "site", reference=path)
    assert not (tmp_path / "site").exists()


def test_missing_bundled_reference_is_empty():
    from elulab.report import Reference, load_reference

    assert load_reference() == Reference()  # the fixture points the bundled path nowhere


def test_shipped_reference_is_a_reference_of_full_profiles():
    real = Path(report_reference.__file__).with_name("reference.json")
    assert real.is_file(), "src/elulab/report/reference.json must ship"
    assert report_reference.bundled_reference_path() != real  # the fixture hides it
    ref = report_reference.load_reference(real)
    assert ref.profile == "full"
    for entry in ref.experiments.values():
        assert entry.profile == "full" and entry.verdicts
        assert entry.revision not in ("unknown",), f"{entry.experiment}: no code revision"


@pytest.fixture(scope="module")
def with_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from elulab.report import build_reference

    d = tmp_path_factory.mktemp("with-reference")
    make_store(d / "s.sqlite").close()
    ref = build_reference(make_reference_store(d / "ref.sqlite"))
    return build_report(d / "s.sqlite", d / "site", reference=ref)


def test_index_shows_the_reference_beside_this_run(with_reference: Path):
    rows = _rows(with_reference)
    c2 = rows["C2"][0]
    ref_cell = c2.split('class="col-ref"', 1)[1]
    assert 'badge-supported">supported (small)<' in ref_cell
    assert '0.148</span> <span class="ci">[0.116, 0.179]</span>, 5 seeds' in ref_cell
    assert 'badge-supported">supported<' in c2.split('class="col-ref"', 1)[0]  # this run
    # C1: a full-profile run needs no reference column; a quick one has none yet
    assert 'class="col-ref"><span class="muted">—<' in rows["C1"][0]
    assert "none yet" in rows["C1"][1]
    # C4: measured only in the reference: a row of its own, linking to its box
    (c4,) = rows["C4"]
    assert 'badge-mixed">mixed<' in c4 and "not in this store" in c4
    assert 'href="claim-C4.html#reference-resnets"' in c4
    page = with_reference.read_text(encoding="utf-8")
    assert 'id="quick-banner"' in page and "not the decisive verdicts" in page
    assert "elulab 9.9.9" in page and "3333333333" in page
    assert _check_links(with_reference.parent) == 2


def test_claim_pages_pair_this_run_with_the_reference(with_reference: Path):
    site = with_reference.parent
    c2 = (site / "claim-C2.html").read_text(encoding="utf-8")
    assert 'id="quick-banner"' in c2
    this_run, reference = c2.split('class="verdict this-run', 1)[1].split(
        'class="verdict reference', 1
    )
    assert "not decisive" in this_run and "5 seeds" in this_run
    assert "ELU keeps gradients alive longer than ReLU." in this_run
    assert "supported (small)" in reference and "<strong>0.148</strong>" in reference
    assert "elulab 9.9.9" in reference and 'title="' + REF_REV + '"' in reference
    assert "<summary>The reference's summary</summary>" in reference
    assert "The full-profile summary." in reference
    # a quick experiment without a reference says so; C4's page holds the reference box
    c1 = (site / "claim-C1.html").read_text(encoding="utf-8")
    assert "No full-profile verdict of dead_units_cnn on C1" in c1
    assert "No full-profile verdict of dead_units on C1" not in c1  # that run is full
    c4 = (site / "claim-C4.html").read_text(encoding="utf-8")
    assert 'id="reference-resnets"' in c4 and "Post-act decays." in c4
    assert "quick-banner" not in c4  # nothing quick on it
    assert "a | b" in c4


def test_the_index_explains_the_status_words(report: Path):
    page = report.read_text(encoding="utf-8")
    legend = page.split('id="status-legend"', 1)[1].split("</dl>", 1)[0]
    from elulab.lab.stats import STATUSES

    for status in STATUSES:
        assert f">{status}<" in legend
    assert "contradict the claim" in legend  # the ledger's "contradicted" is "not supported"


def test_qualifiers_are_shown_with_the_status(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        _summary(
            store, "snn_uci", "C5", "quick", T0, status="not supported", qualifier="at our budget"
        )
    index = build_report(tmp_path / "s.sqlite", tmp_path / "site")
    assert 'badge-not-supported">not supported (at our budget)<' in _rows(index)["C5"][0]
    page = (index.parent / "claim-C5.html").read_text(encoding="utf-8")
    assert 'badge-not-supported">not supported (at our budget)<' in page


# -- the README's verdict table ---------------------------------------------------------------


def test_ledger_markdown_from_a_reference(tmp_path):
    from elulab.report import (
        Reference,
        build_reference,
        ledger_markdown,
        parse_claims,
        replace_between_markers,
    )

    ref = build_reference(make_reference_store(tmp_path / "ref.sqlite"))
    text = ledger_markdown(ref, [c.id for c in parse_claims().claims])
    lines = text.splitlines()
    assert lines[0].startswith("| claim | experiment | verdict | effect [CI] | seeds |")
    assert lines[2] == (
        "| C2 | `rnn_gradient_flow` | supported (small) | 0.148 [0.116, 0.179] | 5 "
        "| gain difference |"
    )
    assert lines[3] == "| C4 | `resnets` | mixed | -1.5 [-2.25, -0.75] | 5 | a \\| b |"
    assert "code 3333333333" in lines[-1] and "elulab 9.9.9" in lines[-1]
    assert "make ledger" in lines[-1]
    pending = ledger_markdown(ref, [], {"not_run": (("C9",), 1)})
    assert "| C9 | `not_run` | — | no full-profile run yet |" in pending
    name = next(iter(ref.experiments))
    bumped = {name: (ref.experiments[name].claims, (ref.experiments[name].version or 1) + 1)}
    stale = ledger_markdown(ref, [], bumped)
    assert "stale" in stale and "rule changed" in stale
    empty = ledger_markdown(Reference())
    assert "No full-profile verdicts are recorded yet" in empty
    readme = "intro\n<!-- verdicts:begin -->\nold table\n<!-- verdicts:end -->\nafter\n"
    new = replace_between_markers(readme, text)
    assert new.startswith("intro\n<!-- verdicts:begin -->\n| claim |")
    assert new.endswith(f"{lines[-1]}\n<!-- verdicts:end -->\nafter\n")
    assert replace_between_markers(new, text) == new


def test_readme_verdict_table_is_generated_from_the_shipped_reference():
    """The README's table between the markers is `elulab ledger --format markdown` of the
    reference shipped in the package. After the full profiles: `make ledger`."""
    from elulab.report import ledger_markdown, parse_claims
    from elulab.report._reference import between_markers

    readme = Path(__file__).resolve().parents[1] / "README.md"
    if not readme.is_file():
        missing("README.md beside the tests")
    shipped = report_reference.load_reference(
        Path(report_reference.__file__).with_name("reference.json")
    )
    if not shipped.experiments:
        # nothing to generate from yet: the README keeps its table until the full
        # profiles have run and `make ledger` writes both the reference and the table
        pytest.skip("the shipped reference holds no full-profile verdict yet (make ledger)")
    from elulab.experiments import EXPERIMENTS

    registry = {n: (tuple(e.claims), e.version) for n, e in EXPERIMENTS.items()}
    expected = ledger_markdown(shipped, [c.id for c in parse_claims().claims], registry)
    assert between_markers(readme.read_text(encoding="utf-8")) == expected, (
        "README.md's verdict table is not the shipped reference's: run `make ledger`"
    )


# -- figures a person can read ------------------------------------------------------------------


def test_drawn_series_fit_one_column_and_use_the_activation_colours(tmp_path):
    from elulab.lab.plots import colour
    from elulab.report._figures import _styles, activation_of, use_log_x

    styles = _styles(["elu", "elu pred rms_fit", "relu", "selu_lecun+alphadropout", "x"])
    assert styles["elu"] == (colour("elu"), "-") and styles["elu pred rms_fit"] == (
        colour("elu"),
        "--",
    )
    assert styles["relu"] == (colour("relu"), "-")
    assert styles["selu_lecun+alphadropout"][0] == colour("selu")
    assert activation_of("leaky_relu_he") == "leaky_relu"
    assert use_log_x(np.array([1e-3, 1e-2, 1e-1, 1.0, 10.0]))
    assert not use_log_x(np.array([0.0, 1.0, 2.0])) and not use_log_x(np.arange(1.0, 200.0))
    stats = series_stats(
        [Series(x=[0, 1, 2], ys={"relu": [0.2, 0.1, 0.3], "elu": [0.0, 0.0, 0.0]})] * 2
    )
    assert stats.all_zero == ["elu"]
    assert draw_series(stats, "Dead fraction · CNN", tmp_path / "s.png")
    w, h = _png_size(tmp_path / "s.png")
    assert w <= report_build.NARROW_FIGURE_PX and (w, h) == (528, 352)


def test_all_zero_series_are_named_not_drawn(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        for seed in range(2):
            _record(
                store,
                "dead",
                "dead0",
                seed,
                RunResult(
                    series={
                        "saturated/cnn": Series(
                            x=[0, 1],
                            ys={"relu": [0.0, 0.0], "elu": [0.0, 0.0]},
                            xlabel="epoch",
                            ylabel="saturated fraction (whole split)",
                        ),
                        "dead/cnn": Series(
                            x=[0, 1],
                            ys={"relu": [0.1, 0.2], "elu": [0.0, 0.0]},
                            xlabel="epoch",
                            ylabel="dead fraction (whole split)",
                        ),
                    }
                ),
            )
        store.record_summary(
            experiment="dead",
            title="Dead",
            claims=["C1"],
            config_hash="dead0",
            profile="quick",
            config={},
            seeds=[0, 1],
            verdicts=[],
            env=ENV,
            created_at=T0,
        )
    index = build_report(tmp_path / "s.sqlite", tmp_path / "site")
    page = (index.parent / "claim-C1.html").read_text(encoding="utf-8")
    assert not (index.parent / "figures" / "dead" / "series-saturated-cnn.png").exists()
    assert (
        "Saturated fraction · CNN: all zero, for every curve (elu, relu) over 2 seeds; "
        "not drawn." in page
    )
    assert "<strong>Dead fraction · CNN.</strong>" in page and "All zero, not drawn: elu." in page
    # no experiment figures: the drawn curves are open, not tucked away
    assert '<details class="series" open>' in page


def test_figures_are_sized_and_numbers_are_collapsed(report: Path):
    page = (report.parent / "claim-C2.html").read_text(encoding="utf-8")
    # the hook's figure is 150 px wide: one column, at its natural size
    assert 'src="figures/rnn_gradient_flow/hook.png" alt="Drawn by the hook &amp; kept."' in page
    assert 'width="150" height="100"' in page
    assert '<figure class="fig fig-experiment">' in page  # not fig-wide
    # with a hook figure, the report's own curves are collapsed
    assert '<details class="series">' in page
    for summary in ("Metrics per seed (2)", "Table: gains (10 rows)", "Resolved config (4 keys)"):
        assert f"<summary>{summary}" in page, summary
    assert "<details open" not in page
    # column names may wrap after _ (never widen the table)
    assert "gain_<wbr>relu" in page


def test_wide_figures_take_a_whole_row(tmp_path):
    from matplotlib.figure import Figure

    with Store(tmp_path / "s.sqlite") as store:
        _record(store, "wide", "wide0", 0, RunResult(metrics={"m": 1.0}))
        tmp = store.tmp_dir()
        fig = Figure(figsize=(16, 3), dpi=100)
        fig.add_subplot().plot([0, 1])
        fig.savefig(tmp / "wide.png")
        store.record_summary(
            experiment="wide",
            title="Wide",
            claims=["C1"],
            config_hash="wide0",
            profile="quick",
            config={"lr": 0.1 + 0.2},
            seeds=[0],
            verdicts=[Verdict("C1", "inconclusive", 1.0, 0.0, 2.0, 1, "s", "e")],
            figures=[{"path": "wide.png", "caption": "Four panels.", "claim": "C1"}],
            figures_tmp=tmp,
            env=ENV,
            created_at=T0,
        )
    index = build_report(tmp_path / "s.sqlite", tmp_path / "site")
    page = (index.parent / "claim-C1.html").read_text(encoding="utf-8")
    assert '<figure class="fig fig-experiment fig-wide">' in page
    assert 'width="1600" height="300"' in page
    assert "<th>lr</th><td>0.3</td>" in page  # 0.30000000000000004 without its float noise


def test_metric_tables_round_and_do_not_invent_spread():
    from types import SimpleNamespace as NS

    runs = [NS(seed=s, result=RunResult(metrics={"c": 0.1 + 0.2, "x": 1 / 3 + s})) for s in (0, 1)]
    view = report_build._metrics_view(runs)
    rows = {r[0]: r for r in view.rows}
    assert rows["c"][1:4] == ["0.3", "0", "0.3"]  # equal values: sd exactly 0
    assert rows["x"][1] == "0.8333" and rows["x"][-1] == "1.333"


def test_long_summaries_show_their_first_sentence_and_fold_the_rest(tmp_path):
    checks = "; ".join(f"check {i} 0.{i} [0.1, 0.9] > 0: supported" for i in range(12))
    text = f"Every check holds at this budget. {checks}. A note on the mechanism."
    with Store(tmp_path / "s.sqlite") as store:
        _summary(store, "long", "C3", "quick", T0, summary=text)
    index = build_report(tmp_path / "s.sqlite", tmp_path / "site")
    page = (index.parent / "claim-C3.html").read_text(encoding="utf-8")
    box = page.split('class="verdict this-run', 1)[1].split("</div>\n  </div>", 1)[0]
    assert '<p class="verdict-summary">Every check holds at this budget.</p>' in box
    assert "The rest of the summary (13 sentences or checks)" in box
    assert box.count("<li>") == 13 and "<li>A note on the mechanism.</li>" in box
    assert "<li>check 11 0.11 [0.1, 0.9] &gt; 0: supported.</li>" in box


def test_merge_references_keeps_the_newest_entry_per_experiment():
    from elulab.report import merge_references
    from elulab.report._reference import Reference, ReferenceEntry

    def entry(name: str, when: str) -> ReferenceEntry:
        return ReferenceEntry.from_json(
            name, {"claims": ["C1"], "summarised": when, "verdicts": []}
        )

    a = Reference({"x": entry("x", "2026-01-01T00:00:00Z"), "y": entry("y", "2026-01-05T00:00:00Z")},
                  created="2026-01-05T00:00:00Z")  # fmt: skip
    b = Reference({"x": entry("x", "2026-01-03T00:00:00Z")}, created="2026-01-03T00:00:00Z")
    merged = merge_references([a, b])
    assert merged.experiments["x"].summarised == "2026-01-03T00:00:00Z"
    assert merged.experiments["y"].summarised == "2026-01-05T00:00:00Z"
    assert merged.created == "2026-01-05T00:00:00Z"
