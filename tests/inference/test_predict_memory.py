"""The predict memory benchmark runs end to end at a tiny size. Structure only: never a figure."""

import json

import numpy as np
import pytest
from PIL import Image

from benchmarks import predict_memory

import lane


def test_generated_photos_are_jpegs_of_the_requested_size(tmp_path):
    predict_memory.write_photos(tmp_path, 3, size=40)
    paths = sorted(tmp_path.iterdir())
    assert [p.name for p in paths] == ["photo_0000.jpg", "photo_0001.jpg", "photo_0002.jpg"]
    with Image.open(paths[0]) as image:
        assert (image.format, image.size) == ("JPEG", (40, 40))
        assert np.asarray(image).std() > 1  # not a flat image: JPEG must encode detail


def _two_counts(folder):
    """A lane job: the benchmark at two counts, each in its own process, its report saved as report.json."""
    script = (
        "import json\nfrom benchmarks import predict_memory\n"
        "report = predict_memory.run(counts=(2, 3), image_size=96, photo_size=64)\n"
        "json.dump(report, open('report.json', 'w'), default=str)\n"
    )
    return [lane.python("-c", script)]


@pytest.mark.slow
@lane.reads(_two_counts)
def test_each_count_is_measured_in_its_own_process(lane_result):
    report = json.loads((lane_result(_two_counts) / "report.json").read_text())
    assert [row["count"] for row in report["rows"]] == [2, 3]
    assert [row.get("images") for row in report["rows"]] == [2, 3], report["rows"]
    assert all(row["peak_rss_mib"] > 100 for row in report["rows"])  # TensorFlow alone takes more
    assert report["mib_per_image"] == pytest.approx(report["rows"][1]["peak_rss_mib"] - report["rows"][0]["peak_rss_mib"])
