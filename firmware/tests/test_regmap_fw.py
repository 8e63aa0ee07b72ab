# The generated register table loads on MicroPython and fits one FC03 read.
import nsp.regmap as regmap


def test_image_fits_one_read():
    assert regmap.IMAGE_SIZE <= 125


def test_identity_first():
    assert regmap.R_MAP_VERSION == 0
    assert regmap.BLOCK_IDENTITY[0] == 0
