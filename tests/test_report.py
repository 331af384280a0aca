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
    assert ">0.2612<" in c2 and ">[0.25, 0.27]<" in c2
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
    assert n_img == 2  # C2: the hook's figure and the drawn series


def test_claim_page_contents(report: Path):
    page = (report.parent / "claim-C2.html").read_text(encoding="utf-8")
    assert "RNN gradient flow" in page and "0.76158" in page
    assert "predicted vs measured gradient norm as a function of time lag" in page
    assert "ELU keeps gradients alive longer than ReLU." in page
    # the hook's figure (copied) and the series drawn by the report
    assert 'src="figures/rnn_gradient_flow/hook.png"' in page
    assert "Drawn by the hook &amp; kept." in page
    assert 'src="figures/rnn_gradient_flow/series-gradient-norm-vs-lag.png"' in page
    assert "mean over 5 seeds per curve, band: ±1 standard deviation over seeds, log scale" in page
    assert "figure file missing from the store" in page and "This file was never written." in page
    # small table: all seeds with a seed column; per-seed metrics; config; env; seeds
    assert "Table: gains" in page and "all 5 seeds" in page
    assert "gain_relu" in page and "seed 4" in page
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
    assert "95% CI n/a, 1 seed<" in c7


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

    def broken(store, store_path, ledger, out):
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
