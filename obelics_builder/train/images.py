"""Image preprocessing by the models' own image processors (the PIL/numpy classes of transformers, so no torchvision
is needed): ``IdeficsImageProcessorPil``, ``Idefics2ImageProcessorPil`` and ``Idefics3ImageProcessorPil`` resize,
split, rescale, normalise and pad; their pixel attention masks are kept.  Our code only decodes the bytes, asks the
processor how many crops (and which tile grid) an image gives, and lays the crops out in a batch.

An image travels through the loader as an ``ImageRef`` (the decoded PIL image and its crop layout); its pixels are
computed when its row is collated, so a shuffle block holds compact images rather than float crops.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .render import ArchSpec

#: the released models' tile / image sizes, scaled to a model's vision tower by ``default_image_processor``
IDEFICS2_SIZE = {"shortest_edge": 378, "longest_edge": 980}
IDEFICS3_TILE = 364


@dataclass
class ImageRef:
    """One decoded image and the crops its arch's image processor makes of it (``rows x cols`` tiles + the global
    image for a split Idefics3 image; 5 for a split Idefics2 image; else 1)."""
    image: Any           # PIL.Image (RGB)
    crops: int = 1
    rows: int = 0
    cols: int = 0

    def __eq__(self, other) -> bool:  # rows compare equal when their images and layouts do (resume tests)
        return (isinstance(other, ImageRef) and (self.crops, self.rows, self.cols) == (other.crops, other.rows,
                other.cols) and self.image.size == other.image.size and self.image.tobytes() == other.image.tobytes())


class ImageConfigError(ValueError):
    """Image options that do not fit the model (reported as a usage error)."""


def default_image_processor(spec: ArchSpec, longest_edge: int | None = None, splitting: bool | None = None):
    """The arch's image processor class with its default config, sized to the model's vision tower
    (``spec.image_size``): idefics -> square ``image_size``, CLIP mean/std; idefics2 -> longest edge
    ``image_size``, shortest edge scaled as 378/980, optional 4+1 splitting; idefics3 -> resize to
    ``longest_edge`` (default 4 tiles) then ``image_size`` tiles + the global image."""
    S = spec.image_size
    if spec.arch == "idefics":
        if longest_edge is not None or splitting:
            raise ImageConfigError("--image-longest-edge and --image-splitting apply to idefics2/idefics3, "
                                   "not idefics")
        from transformers.models.idefics.image_processing_pil_idefics import IdeficsImageProcessorPil

        return IdeficsImageProcessorPil(image_size=S, image_mean=list(spec.image_mean), image_std=list(spec.image_std))
    if spec.arch == "idefics2":
        if longest_edge is not None:
            raise ImageConfigError("--image-longest-edge applies to idefics3 (idefics2 images keep at most "
                                   f"{S}px, the vision tower's size)")
        from transformers.models.idefics2.image_processing_pil_idefics2 import Idefics2ImageProcessorPil

        if S == IDEFICS2_SIZE["longest_edge"]:
            size = dict(IDEFICS2_SIZE)
        else:
            size = {"shortest_edge": max(1, S * IDEFICS2_SIZE["shortest_edge"] // IDEFICS2_SIZE["longest_edge"]),
                    "longest_edge": S}
        return Idefics2ImageProcessorPil(size=size, do_image_splitting=bool(splitting))
    if spec.arch == "idefics3":
        from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

        le = longest_edge if longest_edge is not None else 4 * S
        check_longest_edge(le, S)
        return Idefics3ImageProcessorPil(size={"longest_edge": le}, max_image_size={"longest_edge": S},
                                         do_image_splitting=True if splitting is None else bool(splitting))
    raise ImageConfigError(f"unknown arch {spec.arch!r}")


def check_longest_edge(longest_edge: int, tile: int) -> None:
    if longest_edge < tile or longest_edge % tile:
        raise ImageConfigError(f"--image-longest-edge must be a multiple of the vision tower's tile size {tile} "
                               f"(e.g. {4 * tile} = 4 tiles), got {longest_edge}")
    if longest_edge // tile > 6:
        raise ImageConfigError(f"--image-longest-edge {longest_edge} gives more than 6 x 6 tiles of {tile}px, "
                               f"beyond the Idefics3 processor's <row_r_col_c> tokens")


def configure(image_processor, spec: ArchSpec, longest_edge: int | None = None, splitting: bool | None = None):
    """Apply ``--image-longest-edge`` / ``--image-splitting`` to an existing (e.g. released) image processor."""
    if spec.arch == "idefics" and (longest_edge is not None or splitting):
        raise ImageConfigError("--image-longest-edge and --image-splitting apply to idefics2/idefics3, not idefics")
    if longest_edge is not None:
        if spec.arch != "idefics3":
            raise ImageConfigError("--image-longest-edge applies to idefics3")
        check_longest_edge(longest_edge, int(image_processor.max_image_size["longest_edge"]))
        image_processor.size = {"longest_edge": int(longest_edge)}
    if splitting is not None:
        image_processor.do_image_splitting = bool(splitting)
    return image_processor


class ImagePrep:
    """Decode, lay out and preprocess images with one image processor (picklable into loader workers)."""

    def __init__(self, spec: ArchSpec, image_processor):
        self.spec = spec
        self.ip = image_processor
        self.arch = spec.arch
        self.splitting = bool(getattr(image_processor, "do_image_splitting", False))
        if self.arch == "idefics3":
            self.tile = int(image_processor.max_image_size["longest_edge"])
            self.longest_edge = int(image_processor.size["longest_edge"])
        elif self.arch == "idefics2":
            self.tile = int(image_processor.size["longest_edge"])
            self.longest_edge = self.tile
        else:
            self.tile = self.longest_edge = int(image_processor.size["height"])

    @property
    def max_crops_per_image(self) -> int:
        """Crops of the largest image: the per-row crop cap is ``--max-images`` times this (as m4 multiplies its
        image cap by the crop count)."""
        if self.arch == "idefics3" and self.splitting:
            g = -(-self.longest_edge // self.tile)
            return g * g + 1 if g > 1 else 1
        if self.arch == "idefics2" and self.splitting:
            return 5
        return 1

    @property
    def pad_size(self) -> tuple[int, int]:
        """(H, W) every crop fits in (the vision tower's size)."""
        return self.tile, self.tile

    def decode(self, data: bytes) -> ImageRef | None:
        """Image bytes -> an ``ImageRef`` (RGB, laid out), None when the bytes do not decode."""
        from PIL import Image

        try:
            img = Image.open(io.BytesIO(data))
            if img.format == "JPEG":  # DCT-domain downscale, never below the size the processor first resizes to
                img.draft("RGB", self.draft_size(*img.size))
            img.load()
            if img.mode != "RGB":
                img = img.convert("RGB")
        except Exception:  # noqa: BLE001 - any decoder failure is a counted rejection
            return None
        if img.width < 1 or img.height < 1:
            return None
        return self.ref(img)

    def draft_size(self, w: int, h: int) -> tuple[int, int]:
        """The smallest (w, h) a JPEG may be decoded at: the image processor's first resize target (IDEFICS: the
        square; Idefics2/3: the image scaled to its longest edge), or the full size when it is smaller."""
        L = self.longest_edge
        if self.arch == "idefics":
            return L, L
        k = min(1.0, L / max(w, h))
        return max(1, math.ceil(w * k)), max(1, math.ceil(h * k))

    def ref(self, img) -> ImageRef:
        """A PIL image -> its ``ImageRef``: the crop layout is the image processor's own
        (``get_number_of_image_patches`` for Idefics3)."""
        if img.mode != "RGB":
            img = img.convert("RGB")
        if self.arch == "idefics3" and self.splitting:
            n, rows, cols = self.ip.get_number_of_image_patches(img.height, img.width, {})
            return ImageRef(img, max(1, n), rows, cols)
        return ImageRef(img, 5 if (self.arch == "idefics2" and self.splitting) else 1)

    def pixels(self, ref: ImageRef) -> tuple[np.ndarray, np.ndarray | None]:
        """(crops, 3, h, w) float32 pixel values and (crops, h, w) bool pixel attention mask (None for idefics)
        from the image processor; ``h, w <= pad_size``."""
        if self.arch == "idefics":
            out = self.ip(images=[ref.image])  # IDEFICS' processor returns the pixel values themselves
            pv = np.asarray(out[0], np.float32)
            return pv[None], None
        out = self.ip(images=[[ref.image]])
        pv = np.asarray(out["pixel_values"][0], np.float32)
        mask = np.asarray(out["pixel_attention_mask"][0]).astype(bool)
        if pv.shape[0] != ref.crops:
            raise RuntimeError(f"the image processor made {pv.shape[0]} crops of a {ref.image.size} image, its layout "
                               f"said {ref.crops}")
        return pv, mask
