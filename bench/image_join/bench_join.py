"""Per-part image lookup cost: the old scan (tasks.load_image_rows, per batch) vs the keyed join (images.join), on a
generated image table.  Usage: python bench/image_join/bench_join.py DIR TABLE_PARTS ROWS_PER_PART [ROW_GROUP_ROWS];
the last line is JSON.  One "document part" = 4 batches of 2,000 image URLs drawn from the whole table."""
import sys, time, random, json, resource
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
from obelics_builder.io.image_table import IMAGE_TABLE_SCHEMA
from obelics_builder.images.join import BucketReader, JoinConfig, bucket_images
from obelics_builder.tasks import load_image_rows

root = Path(sys.argv[1]); parts = int(sys.argv[2]); rows = int(sys.argv[3])
table = root / "images" / "table"; table.mkdir(parents=True, exist_ok=True)
every = []
for i in range(parts):
    urls = [f"https://h{(i*31+j)%997}.example/img/{i}/{j}.jpg" for j in range(rows)]
    every += urls
    cols = {f.name: pa.nulls(rows, f.type) for f in IMAGE_TABLE_SCHEMA}
    cols.update(url=pa.array(urls), status=pa.array([200]*rows, pa.int32()), sha256=pa.array([f"{i}-{j}" for j in range(rows)]),
                data=pa.array([b"x"*2000]*rows))
    pq.write_table(pa.table(cols, schema=IMAGE_TABLE_SCHEMA), table / f"part-{i:05d}.parquet")
random.seed(0)
# a document part: 4 batches of 512 docs x ~4 images = 2,000 URLs per batch
batches = [set(random.sample(every, 2000)) for _ in range(4)]
t = time.process_time(); bm = bucket_images(table, root / "images" / "by_url_hash", "fp", JoinConfig(row_group_rows=int(sys.argv[4]) if len(sys.argv) > 4 else 1024)); tb = time.process_time() - t
t = time.process_time()
for b in batches: old = load_image_rows(str(root), b)
t_old = (time.process_time() - t)
t = time.process_time(); r = BucketReader.of(root / "images" / "by_url_hash")
new = r.lookup(set().union(*batches))  # the final task: one lookup of the part's URLs
t_new = time.process_time() - t
assert {u: new[u] for u in batches[-1]} == load_image_rows(str(root), batches[-1])
print(json.dumps({"table_parts": parts, "rows": parts*rows, "buckets": bm["buckets"],
  "bucketing_cpu_s": round(tb, 2), "per_part_cpu_s_scan": round(t_old, 3), "scan_files_read": 4*parts, "scan_rows_read": 4*parts*rows,
  "per_part_cpu_s_join": round(t_new, 3), "join_files_opened": r.files, "join_row_groups": r.row_groups, "join_rows_read": r.rows}))
