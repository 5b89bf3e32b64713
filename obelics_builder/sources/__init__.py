"""Where documents come from: Common Crawl dumps and mirrors (:mod:`.commoncrawl`), the streaming WARC reader
(:mod:`.warc`) and URL replay from WARC files for images (:mod:`.archive`)."""
