"""Image-text alignment scores (a stage of one's own, after ``final``): see :mod:`.stage`."""
from .stage import image_text

__all__ = ["image_text"]
