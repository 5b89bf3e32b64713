"""A static HTML report of a crawl output folder: the funnel, a sample of kept documents, removed examples next to
their thresholds, and score distributions.  ``build_report(out)`` writes ``OUT/report/index.html`` and its pages."""
from .build import build_report

__all__ = ["build_report"]
