"""The Dask engine: the only package that imports Dask.

``Engine`` owns the cluster connection (a LocalCluster by default, an existing scheduler with ``scheduler=
"tcp://host:port"``, or ``"sync"`` to run every task in this process) and maps the units of ``obelics_builder.tasks``
over WARCs and parts (a sliding window of at most ``IN_FLIGHT_PER_THREAD`` tasks per worker thread in flight, so a
90,000-unit map is never one 90,000-task graph); ``reductions`` holds the run-wide steps (URL dedup, image-URL
counts) as Dask DataFrame groupbys whose memory is bounded by partition size, reading their per-part files in groups
of ``parts.PARTITION_BYTES`` (the graph is O(bytes), not O(WARCs)).
"""
from .executor import Engine

__all__ = ["Engine"]
