"""`images.load_image`: every file read as a viewer shows it, and a file it cannot use named in one line."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from keras_googlenet.data import images


@pytest.fixture(scope="module")
def owl():
    """The bundled owl photo as Pillow reads it, RGB uint8."""
    with Image.open(images.sample_photo("owl.jpg")) as image:
        return np.asarray(image.convert("RGB"))


def test_a_16_bit_greyscale_png_reads_as_its_8_bit_copy(owl, tmp_path):
    grey = np.asarray(Image.fromarray(owl).convert("L"), dtype=np.uint16)
    Image.fromarray(grey.astype(np.uint8)).save(tmp_path / "grey8.png")
    Image.fromarray(grey * 257).save(tmp_path / "grey16.png")  # 0..65535: what a 16-bit scanner writes
    with Image.open(tmp_path / "grey16.png") as check:
        assert check.mode.startswith("I")  # what Pillow makes of it, which convert("RGB") clipped at 255
    sixteen, eight = images.load_image(tmp_path / "grey16.png"), images.load_image(tmp_path / "grey8.png")
    assert sixteen.shape == eight.shape == owl.shape
    assert np.abs(sixteen.astype(int) - eight.astype(int)).max() <= 1
    assert sixteen.mean() < 200  # not the white image that clipping gave


def test_a_photo_rotated_with_its_exif_tag_reads_as_the_original(owl, tmp_path):
    sideways = Image.fromarray(owl).transpose(Image.Transpose.ROTATE_90)  # stored turned, as a phone does
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to view
    sideways.save(tmp_path / "sideways.png", exif=exif)
    loaded = images.load_image(tmp_path / "sideways.png")
    assert loaded.shape == owl.shape
    assert np.array_equal(loaded, owl)  # PNG: lossless


def _png_header_only(path, width, height):
    """A small PNG whose header declares ``width`` x ``height`` (a decompression bomb's shape)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_named_with_pillows_limit_not_raised_as_it_is(tmp_path):
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 40000, 40000)
    with pytest.raises(ValueError) as error:
        images.load_image(bomb)
    message = str(error.value)
    assert message.startswith("The image is too large: Image size (1600000000 pixels) exceeds limit of ")
    assert message.endswith(f"Received: image='{bomb}'") and "\n" not in message
