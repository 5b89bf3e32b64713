"""Reading and writing: Parquet parts, completion markers, stats."""
