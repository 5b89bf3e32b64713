"""images.nsfw.letterbox: NudeNet's input with less work, byte for byte the black-square resize it replaces."""
from __future__ import annotations

import random

import numpy as np
from PIL import Image

from obelics_builder.images.nsfw import letterbox, letterbox_reference

SIDES = (1, 2, 3, 5, 31, 64, 150, 199, 200, 201, 319, 320, 321, 333, 479, 480, 639, 640, 641, 1000, 1279, 1280)


def _image(w: int, h: int, k: int, photo: Image.Image) -> Image.Image:
    if k % 2:
        return Image.fromarray(np.random.default_rng(k).integers(0, 256, (h, w, 3), dtype=np.uint8))
    return photo.resize((w, h), Image.BILINEAR)


def test_letterbox_is_the_reference_byte_for_byte(shared_data):
    photo = Image.open(shared_data / "images/cc0-photos/astronaut.png").convert("RGB")
    rnd = random.Random(5)
    sizes = [(w, h) for w in SIDES for h in SIDES[::2]]
    sizes += [(rnd.randint(1, 1280), rnd.randint(1, 1280)) for _ in range(300)]
    sizes += [(rnd.randint(1, 1280), rnd.randint(1, 40)) for _ in range(60)]  # banners and columns
    sizes += [(rnd.randint(1, 40), rnd.randint(1, 1280)) for _ in range(60)]
    for k, (w, h) in enumerate(sizes):
        im = _image(w, h, k, photo)
        got, want = letterbox(im, 320), letterbox_reference(im, 320)
        assert got.shape == want.shape == (320, 320, 3) and got.dtype == np.uint8
        assert np.array_equal(got, want), (w, h)


def test_other_input_sizes_stay_exact():
    im = Image.fromarray(np.random.default_rng(1).integers(0, 256, (90, 250, 3), dtype=np.uint8))
    for size in (64, 192, 224, 416, 640):  # odd factors 1, 3, 7, 13, 5
        assert np.array_equal(letterbox(im, size), letterbox_reference(im, size)), size
