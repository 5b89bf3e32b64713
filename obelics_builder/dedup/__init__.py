"""Deduplication stages (engine-neutral functions; the engine does the global reductions)."""
