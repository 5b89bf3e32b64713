"""obelics-builder: build OBELICS-style interleaved image-text datasets from Common Crawl."""

__version__ = "0.1.0"
