"""Opt-out removal with an audit trail.

Sources: Spawning's Do-Not-Train registry (:mod:`.spawning`), a local list of URLs or domains (:mod:`.local`) and
C2PA ``training-mining`` assertions inside image files (:mod:`.c2pa`); the pages' own consent signals (archived
headers, head meta tags) are decided early, by :mod:`.page`.  :mod:`.stage` removes what they flag and
:mod:`.manifest` writes the dated ``optout-manifest-YYYY-MM-DD.parquet`` beside the shards.
"""
