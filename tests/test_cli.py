"""The CLI's summary command and its error handling."""

import re

import pytest

from keras_googlenet import cli


def test_summary_prints_parameters_per_head_and_a_top5_for_the_bundled_photo(capsys):
    assert cli.main(["summary", "--input-size", "96"]) == 0
    out = capsys.readouterr().out
    counts = {part: int(number.replace(",", "")) for part, number in re.findall(r"^  (backbone|main|aux1|aux2|total)\s+([\d,]+)$", out, re.M)}
    assert set(counts) == {"backbone", "main", "aux1", "aux2", "total"}
    assert counts["backbone"] + counts["main"] + counts["aux1"] + counts["aux2"] == counts["total"]
    assert counts["main"] == 1024 * 1000 + 1000
    top5 = re.findall(r"^\s+\d\.\d{4}\s+(n\d{8})\s+\S", out, re.M)
    assert len(top5) == 5


@pytest.mark.parametrize(
    "argv, message",
    [
        (["summary", "--image", "/no/such/photo.jpg"], "image file does not exist. Received: image='/no/such/photo.jpg'"),
        (["summary", "--input-size", "40"], "at least 79x79"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("keras-googlenet summary: error:")


def test_a_non_image_file_is_reported_by_name(tmp_path, capsys):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    assert cli.main(["summary", "--input-size", "96", "--image", str(text)]) == 2
    assert f"not a readable image (UnidentifiedImageError). Received: image='{text}'" in capsys.readouterr().err
