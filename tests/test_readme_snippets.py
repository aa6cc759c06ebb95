"""The README's and the site's Python snippets run as printed and do what their comments say.

Every ```python block of the README and of docs/ is preceded by an HTML comment: ``<!-- run:
FILE::TEST -->``, the test that runs it, or ``<!-- not run: REASON -->`` (tests/test_docs.py checks).
"""

import json
import math
import pathlib
import re

import pytest

import lane

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _snippet(section, path=ROOT / "docs" / "model.md"):
    """The first ```python block under the heading ``section`` of a page."""
    text = path.read_text()
    start = text.index(f"\n## {section}\n")
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_the_readme_shows_the_model_snippet_of_the_site_as_it_is():
    assert _snippet("In Python", README) == _snippet("The model")


def test_the_data_snippet_runs_as_printed():
    namespace = {}
    exec(_snippet("Data", ROOT / "docs" / "training.md"), namespace)
    images, targets = next(iter(namespace["train"]))
    assert images.shape == (32, 96, 96, 3) and sorted(targets) == ["aux1", "aux2", "main"]
    assert namespace["info"].num_classes == 10


def test_the_model_snippet_fits_and_predicts_on_the_same_preprocessed_images():
    code = _snippet("The model")
    (fitted,) = re.findall(r"model\.fit\((\w+),", code)
    (predicted,) = re.findall(r"model\.predict\((\w+)\)", code)
    assert fitted == predicted and f"{fitted} = kg.preprocess_input(images)" in code


def _model_snippet(folder):
    """A lane job: the snippet run as printed on 64 random images and labels; its losses and output shapes saved."""
    # Two steps of 32 random images.
    (folder / "snippet.py").write_text(
        "import json\nimport numpy as np\nrng = np.random.default_rng(0)\n"
        "images = rng.integers(0, 256, (64, 224, 224, 3)).astype('float32')\ny = rng.integers(0, 1000, 64)\n"
        + _snippet("The model")
        + "\njson.dump({'history': model.history.history, 'shapes': [list(p.shape) for p in probs]}, open('out.json', 'w'))\n"
    )
    return [lane.python("snippet.py")]


@pytest.mark.slow
@lane.reads(_model_snippet)
def test_the_model_snippet_run_as_printed_trains_without_exploding_losses(lane_result):
    # The untrained paper variant (no batch norm) starts far from chance on
    # its auxiliary heads even on scaled input (aux1 about 25 here), so only
    # the main head is held near ln(1000).
    out = json.loads((lane_result(_model_snippet) / "out.json").read_text())
    history = out["history"]
    assert all(math.isfinite(value) for name in ("main_loss", "aux1_loss", "aux2_loss") for value in history[name]), history
    assert history["main_loss"][-1] < 2 * math.log(1000), history
    assert out["shapes"][0] == [64, 1000]
