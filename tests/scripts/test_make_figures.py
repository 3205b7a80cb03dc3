"""Every figure on a page agrees with the file that measured it (scripts/make_figures.py)."""

import importlib.util
import json

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("make_figures", ROOT / "scripts" / "make_figures.py")
figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(figures)


def test_every_page_agrees_with_its_sources():
    stale = [f"{page.relative_to(ROOT)}: {problem}" for page in figures.pages() for problem in figures.stale(page.read_text())]
    assert not stale, "run scripts/make_figures.py:\n" + "\n".join(stale)


def test_the_headline_figures_have_a_source():
    readme = (ROOT / "README.md").read_text()
    for source in ("report.json ; results.int8.PrivateTest.accuracy", "x_peer_cpu_fps", "peak_rss_mb", "rss_anon_mb", "fig-block demo-summary"):
        assert source in readme


def bench(folder, name, rows, time="20261201T101334Z", board="AMD EPYC"):
    (folder / name).write_text(json.dumps({"board": board, "time": time, "rows": rows}))


def test_a_figure_comes_from_the_newest_file_that_has_it_and_a_stale_page_is_named(tmp_path):
    folder = tmp_path / "bench"
    folder.mkdir()
    bench(folder, "AMD_pipeline_20261101T000000Z.json", [{"clip": "sample", "setting": "x (default)", "x_peer_fps": 9.14}])
    bench(folder, "Zed_pipeline_20261201T000000Z.json", [{"clip": "sample", "setting": "x (default)", "x_peer_fps": 11.26}])
    bench(folder, "AMD_pipeline_20261202T000000Z.json", [{"clip": "sample", "setting": "x (default)"}])  # no peer: skipped
    marker = "<!-- fig bench/*_pipeline_*.json ; rows[clip=sample & setting*=(default)].x_peer_fps ; .1f -->"
    page = f"speed {marker}9.1<!-- /fig -->x"
    assert figures.refresh(page, tmp_path) == f"speed {marker}11.3<!-- /fig -->x"
    (problem,) = figures.stale(page, tmp_path)
    assert "the page says '9.1', the source '11.3'" in problem
    assert figures.stale(figures.refresh(page, tmp_path), tmp_path) == []


def test_paths_formats_and_a_figure_nothing_resolves(tmp_path):
    document = {"time": "20261201T101334Z", "rows": [{"clip": "hard", "recall": 0.92}, {"clip": "sample", "recall": 0.9919}]}
    assert figures.walk(document, "rows[clip=sample].recall") == 0.9919
    assert figures.walk(document, "rows[0].clip") == "hard"
    assert figures.render(0.9919, ".1%") == "99.2%" and figures.render(104584, ",") == "104,584"
    assert figures.render("20261201T101334Z", "date") == "2026-12-01"
    (tmp_path / "r.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match="no file matching r.json has rows\\[clip=lab\\]"):
        figures.figure("r.json ; rows[clip=lab].recall ; .1%", tmp_path)
