"""The README is a landing page, the site under docs/ builds offline with warnings as errors, and its figures have one source."""

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from keras_googlenet.model import architecture

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
RESULTS = ROOT / "benchmarks" / "results"


def _macros():
    spec = importlib.util.spec_from_file_location("docs_macros", ROOT / "tools" / "docs_macros.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _results(name):
    return json.loads((RESULTS / f"{name}.json").read_text())


def test_the_readme_is_a_landing_page_that_links_every_guide():
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    for page in ("getting-started", "model", "weights", "training", "beyond-one-machine", "deploy", "grad-cam",
                 "troubleshooting", "benchmarks"):
        assert f"(docs/{page}.md)" in text, page
    assert "(docs/api/index.md)" in text


def test_the_readme_figures_are_the_saved_results():
    # The README cannot render macros (GitHub shows it as it is): its figures are checked instead.
    text = " ".join(README.read_text().split())
    main_job, ci = _results("main_job"), _results("ci")
    assert f"Expect about {main_job['wall']} on a 2-core machine" in text
    assert f"({main_job['epochs']} per epoch after the first) and a best checkpoint near {main_job['top1']} top-1" in text
    assert f"Expect about {ci['wall']} on the same machine" in text
    assert f'`python -m pytest -m "not slow"` ({ci["quick_wall"]})' in text


def test_the_saved_results_agree_with_their_own_numbers():
    main_job, ci = _results("main_job"), _results("ci")
    assert main_job["wall"] == f"{main_job['wall_s'] // 60} min {main_job['wall_s'] % 60} s"
    assert main_job["top1"] == f"{100 * main_job['top1_value']:.1f}%"
    assert main_job["first_epoch"] == f"{main_job['epoch_s'][0]} s"
    later = main_job["epoch_s"][1:]
    assert main_job["epochs"] == f"{min(later)}-{max(later)} s"
    assert ci["wall"] == f"{round(ci['wall_min'])} min"
    assert ci["quick_wall"] == f"{ci['quick_wall_s'] // 60} min {ci['quick_wall_s'] % 60} s"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_no_page_types_a_main_job_figure_by_hand(page):
    # The main job's accuracy and time come from benchmarks/results/main_job.json; a page that
    # typed them (80.8% here, 85.5% there) could disagree with another.
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    typed = re.findall(r"\d+(?:\.\d+)?% top-1 on the 359 validation digits|main job[^.]*\d+ min \d+ s", text)
    assert not typed, typed


# A measured figure: a percentage, a number in scientific notation, a time, a size or a
# decimal ratio. Pages quote them from benchmarks/results/*.json with macros; outside code
# blocks and macros, only these settings and citations may be typed.
MEASURED = re.compile(r"(?<![\w.\-/])(\d+(?:\.\d+)?%|\d\.\d+e[-+]\d+|\d+(?:\.\d+)? ?(?:ms|s|min|MiB|GiB|MB|GB|kB)\b|\d+\.\d+x\b)")
TYPED_ON_PURPOSE = {
    "benchmarks.md": {"53 MB", "5 s", "100%"},  # the size of the files the benchmark writes; its target; "more than 100% of the peak"
    "beyond-one-machine.md": {"15 s", "3 s", "4 s", "30 s"},  # the lease's renewal, the test's outage, gcsfs' backoff, Kubernetes' grace
    # 3 bytes x 1000 x 1024 classifier weights (arithmetic); verify's thresholds and the project's 10%
    "deploy.md": {"3 MiB", "1%", "10%", "90%", "99%", "100%"},
    "getting-started.md": {"10%"},  # chance on ten classes
    "training.md": {"8%", "20%", "50%", "100%"},  # the crop areas, the held-out fraction
    "weights.md": {"68.7%", "88.9%", "69.778%", "89.53%"},  # the publishers' ImageNet accuracies, cited
}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_no_page_types_a_measured_figure_by_hand(page):
    text = re.sub(r"```.*?```|\{\{.*?\}\}|\{%.*?%\}|<!--.*?-->|\]\([^)]*\)", "", page.read_text(), flags=re.S)
    typed = {match.group(0) for match in MEASURED.finditer(text)}
    assert typed <= TYPED_ON_PURPOSE.get(page.name, set()), typed - TYPED_ON_PURPOSE.get(page.name, set())


def _python_blocks(path):
    """``(marker before it or None, code)`` of every ```python block."""
    text = path.read_text()
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        before = text[: match.start()].rstrip().splitlines()
        marker = re.fullmatch(r"<!-- (run: .+|not run.*: .+) -->", before[-1]) if before else None
        blocks.append((marker.group(1) if marker else None, match.group(1)))
    return blocks


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda path: str(path.relative_to(ROOT)))
def test_every_python_block_runs_in_a_named_test_or_says_why_not(path):
    for marker, code in _python_blocks(path):
        assert marker, f"{path.name}: a ```python block without <!-- run: FILE::TEST --> or <!-- not run: REASON -->:\n{code}"
        if marker.startswith("run: "):
            file, test = marker[len("run: "):].split("::")
            assert f"def {test}(" in (ROOT / file).read_text(), marker


def test_the_diagram_draws_every_block_of_the_table_in_order_with_its_heads():
    macros = _macros()
    svg, rows = macros.architecture_diagram(), macros.architecture_rows()
    drawn = re.findall(r">inception (\w+)</tspan> 1x1 (\d+) \| 3x3 (\d+)&gt;(\d+) \| 5x5 (\d+)&gt;(\d+) \| pool (\d+) = (\d+)<", svg)
    assert drawn == [
        (block.name, *map(str, (block.filters_1x1, block.filters_3x3_reduce, block.filters_3x3, block.filters_5x5_reduce,
                                block.filters_5x5, block.pool_proj, block.output_channels)))
        for block in architecture.INCEPTION_BLOCKS
    ]
    # The paper's Table 1, typed here: 3a gives 256 channels, 5b 1024; the heads follow 4a and 4d.
    assert (drawn[0][-1], drawn[-1][-1]) == ("256", "1024")
    labels = [label for label, _, _ in rows]
    assert labels.index("pool3") == labels.index("inception 3b") + 1 and labels.index("pool4") == labels.index("inception 4e") + 1
    heads = re.findall(r"<tspan font-weight=\"bold\">(aux\d)</tspan>", svg)
    assert heads == ["aux1", "aux2"]
    assert [(label, aux) for label, _, aux in rows if aux] == [("inception 4a", "aux1"), ("inception 4d", "aux2")]


def test_a_cell_names_the_row_it_cannot_find():
    report = _results("cpu")
    assert _macros().row(report, "TFLite fp32", 32)["batch"] == 32
    with pytest.raises(KeyError, match="no row 'TFLite fp64' at batch 1"):
        _macros().row(report, "TFLite fp64", 1)


@pytest.mark.needs("mkdocs", 'pip install -e ".[docs]"')
def test_the_site_builds_offline_with_warnings_as_errors(tmp_path):
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    pages = {path.relative_to(site).as_posix(): path.read_text() for path in site.rglob("*.html")}
    # Nothing fetched from elsewhere: no script, stylesheet, image or font from another host.
    for name, html in pages.items():
        assert not re.findall(r"<(?:script|img|link)[^>]+(?:src|href)=\"https?://", html), name
    for css in site.rglob("*.css"):
        assert "fonts.googleapis" not in css.read_text(), css
    # Macros rendered, pictures there, the reference generated from the docstrings.
    assert not any("{{" in html for html in pages.values())
    main_job = _results("main_job")
    assert f"<strong>{main_job['wall']}</strong>" in pages["getting-started/index.html"]
    assert pages["model/index.html"].count("inception 4e</tspan>") == 1
    assert '<img alt="The example web page' in pages["index.html"] and (site / "web" / "page.png").is_file()
    assert "cam/digit0_label8.png.cam.png" in pages["grad-cam/index.html"]
    assert "src=\"curves.png\"" in pages["training/index.html"] and (site / "training" / "curves.png").is_file()
    # A ratio quoted in prose is the saved run's: cpu.json's TFLite fp32 row at batch 1 holds 0.854.
    assert "takes 0.85x onnxruntime" in " ".join(pages["benchmarks/index.html"].split())
    assert "keras_googlenet.training.run.train" in pages["api/training/index.html"]
    assert "The paper&#39;s training augmentation" in pages["api/data/index.html"] or "The paper's training augmentation" in pages["api/data/index.html"]
