"""HTML -> interleaved documents.

``extract_stage`` (the pipeline stage), ``extract_record`` / ``extract_html`` (one page), ``extract_obelics`` (the
OBELICS reference rules on a decoded string) and ``decode_html`` (bytes -> str).
"""
from .charset import decode_html
from .obelics import ExtractionTimeout, extract_obelics
from .stage import ExtractionRejected, extract_html, extract_record, extract_stage, sniff_not_html

__all__ = [
    "ExtractionRejected",
    "ExtractionTimeout",
    "decode_html",
    "extract_html",
    "extract_obelics",
    "extract_record",
    "extract_stage",
    "sniff_not_html",
]
