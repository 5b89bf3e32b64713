"""Final dataset: publishable Parquet and WebDataset shards, the dataset card and funnel chart, Hub upload.

- :func:`write_dataset` (``shards.py``): ``OUT/documents`` + ``OUT/images/table`` -> ``OUT/dataset/``
- :func:`convert` (``convert.py``): Parquet with embedded images <-> WebDataset, lossless
- :func:`write_card` (``card.py``): ``OUT/dataset/README.md`` and ``funnel.png``
- :func:`publish` (``publish.py``): upload ``OUT/dataset`` to a Hub dataset repository
"""
from .shards import DEFAULT_SHARD_SIZE, parse_size, write_dataset

__all__ = ["DEFAULT_SHARD_SIZE", "parse_size", "write_dataset", "convert", "write_card", "publish"]


def __getattr__(name):  # the card (Pillow) and publish (huggingface_hub) load lazily
    if name == "convert":
        from .convert import convert

        return convert
    if name == "write_card":
        from .card import write_card

        return write_card
    if name == "publish":
        from .publish import publish

        return publish
    raise AttributeError(name)
