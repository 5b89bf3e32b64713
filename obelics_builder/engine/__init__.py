"""The Dask engine: the only package that imports Dask.

``Engine`` owns the cluster connection (a LocalCluster by default, an existing scheduler with ``scheduler=
"tcp://host:port"``, or ``"sync"`` to run every task in this process) and maps the units of ``obelics_builder.tasks``
over WARCs and parts; ``reductions`` holds the run-wide steps (URL dedup, image-URL counts) as Dask DataFrame
groupbys whose memory is bounded by partition size.
"""
from .executor import Engine

__all__ = ["Engine"]
