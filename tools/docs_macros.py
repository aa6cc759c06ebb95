"""The documentation site's figures and pictures, made at build time (mkdocs-macros' module; see mkdocs.yml).

Every figure a page quotes comes from one saved results file, so that two
pages cannot disagree and a new measurement changes them all:

- ``{{ benchmark("cpu") }}``: the tables of ``benchmarks/results/cpu.json``,
  as ``python -m benchmarks.run --markdown`` prints them;
- ``{{ results.main_job.top1 }}`` and the like: any field of any
  ``benchmarks/results/*.json`` (``main_job.json`` is the README's main job,
  ``ci.json`` the test suite's run);
- ``{{ cell("cpu", "TFLite fp32", 1) }}``: one number of a benchmark's table
  (its ratio, or any column);
- ``{{ quotient("cpu", "TFLite int8", "TFLite fp32", 1) }}``: two rows' median
  times divided;
- ``{{ table(results.deploy.web) }}``: a table saved as measured (its
  ``columns``, ``align`` and ``rows``);
- ``{{ change(pair) }}``: a before-and-after pair, "73.6% to 85.1%";
- ``{{ architecture_diagram() }}``: the network drawn from
  `keras_googlenet.model.architecture`'s table, which it imports without
  TensorFlow.

Only pages whose front matter says ``render_macros: true`` are rendered.
"""

import html
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def load_results():
    """``{stem: parsed JSON}`` of every results file."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))}


def define_env(env):
    if str(ROOT) not in sys.path:  # `benchmarks` and `keras_googlenet` from this checkout
        sys.path.insert(0, str(ROOT))
    env.variables["results"] = load_results()

    @env.macro
    def benchmark(name):
        """The Markdown tables of ``benchmarks/results/NAME.json``."""
        from benchmarks import common

        return common.markdown(env.variables["results"][name])

    @env.macro
    def cell(name, case, batch, column="ratio", digits=2, suffix=""):
        """One number of a benchmark's table: ``cell("cpu", "TFLite fp32", 1)`` is that row's ratio, "0.85"."""
        return f"{row(env.variables['results'][name], case, batch)[column]:.{digits}f}{suffix}"

    @env.macro
    def quotient(name, case, other, batch, digits=2):
        """The ratio of two rows' median times in one benchmark's table: ``quotient("cpu", "TFLite int8", "TFLite fp32", 1)``."""
        report = env.variables["results"][name]
        return f"{row(report, case, batch)['median_ms'] / row(report, other, batch)['median_ms']:.{digits}f}"

    env.macro(table)
    env.macro(change)
    env.macro(architecture_diagram)


def table(entry):
    """A Markdown table from a results entry's ``columns``, ``align`` and ``rows`` (strings, as measured)."""
    lines = [entry["columns"], entry["align"], *entry["rows"]]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def change(pair):
    """``["73.6%", "85.1%"]`` as "73.6% to 85.1%", and a pair of equal values as "93.7% both ways"."""
    before, after = pair
    return f"{before} both ways" if before == after else f"{before} to {after}"


def row(report, case, batch):
    """The row of ``case`` at ``batch`` in a benchmark report; a KeyError names what is missing."""
    for part in report["parts"]:
        for found in part.get("rows", []):
            if found.get("case") == case and found.get("batch") == batch:
                return found
    raise KeyError(f"no row {case!r} at batch {batch}")


BOX_WIDTH, ROW_HEIGHT, GAP = 520, 34, 10


def architecture_rows(variant="paper"):
    """``[(label, detail, side)]`` from input to output: the stem, each inception block of Table 1, its pools and heads."""
    from keras_googlenet.model import architecture as table

    sizes = table.feature_map_sizes(table.DEFAULT_INPUT_SIZE, variant)
    rows = [
        ("input", f"{table.DEFAULT_INPUT_SIZE} x {table.DEFAULT_INPUT_SIZE} x 3", None),
        (table.STEM_CONV1, f"7x7/2, {table.STEM_CONV1_FILTERS} filters: {sizes[0]} x {sizes[0]}", None),
        ("pool1", f"3x3/2 max: {sizes[1]} x {sizes[1]}", None),
        ("conv2", f"1x1 {table.STEM_CONV2_REDUCE_FILTERS}, 3x3 {table.STEM_CONV2_FILTERS}", None),
        ("pool2", f"3x3/2 max: {sizes[2]} x {sizes[2]}", None),
    ]
    for block in table.INCEPTION_BLOCKS:
        detail = (
            f"1x1 {block.filters_1x1} | 3x3 {block.filters_3x3_reduce}>{block.filters_3x3} | "
            f"5x5 {block.filters_5x5_reduce}>{block.filters_5x5} | pool {block.pool_proj} = {block.output_channels}"
        )
        rows.append((f"inception {block.name}", detail, table.AUX_HEAD_AFTER.get(block.name)))
        if block.name in table.POOL_AFTER:
            size = sizes[3] if table.POOL_AFTER[block.name] == "pool3" else sizes[4]
            rows.append((table.POOL_AFTER[block.name], f"max pool/2: {size} x {size}", None))
    rows.append(("main", "global average pool, dropout, FC 1000, softmax", None))
    return rows


def architecture_diagram(variant="paper"):
    """An SVG of `architecture_rows`, the auxiliary heads beside the blocks they follow."""
    rows = architecture_rows(variant)
    height = len(rows) * (ROW_HEIGHT + GAP)
    width = BOX_WIDTH + 200
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="GoogLeNet, variant {variant}" '
        f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px">',
        "<style>rect{fill:#eef3fb;stroke:#3f51b5}text{font:13px sans-serif}.aux rect{fill:#fdf0e6;stroke:#e65100}</style>",
    ]
    for index, (label, detail, aux) in enumerate(rows):
        y = index * (ROW_HEIGHT + GAP)
        parts.append(
            f'<g><rect x="0" y="{y}" width="{BOX_WIDTH}" height="{ROW_HEIGHT}" rx="4"/>'
            f'<text x="10" y="{y + 22}"><tspan font-weight="bold">{html.escape(label)}</tspan> '
            f"{html.escape(detail)}</text></g>"
        )
        if index + 1 < len(rows):
            parts.append(f'<line x1="{BOX_WIDTH / 2}" y1="{y + ROW_HEIGHT}" x2="{BOX_WIDTH / 2}" y2="{y + ROW_HEIGHT + GAP}" stroke="#3f51b5"/>')
        if aux:
            parts.append(
                f'<g class="aux"><line x1="{BOX_WIDTH}" y1="{y + ROW_HEIGHT / 2}" x2="{BOX_WIDTH + 20}" '
                f'y2="{y + ROW_HEIGHT / 2}" stroke="#e65100"/><rect x="{BOX_WIDTH + 20}" y="{y}" width="170" '
                f'height="{ROW_HEIGHT}" rx="4"/><text x="{BOX_WIDTH + 30}" y="{y + 22}">'
                f'<tspan font-weight="bold">{aux}</tspan> softmax</text></g>'
            )
    parts.append("</svg>")
    # In a block-level element, which Markdown passes through: an <svg> alone would get <p> tags.
    return '<figure class="architecture">' + "".join(parts) + "</figure>"
