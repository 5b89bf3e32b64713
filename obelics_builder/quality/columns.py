"""The stored score columns of the text checks (one table, read by the scoring stage and by the prose doc checks)."""
from __future__ import annotations

#: Check name -> column suffix (``node_<suffix>`` / ``doc_<suffix>``), in the reference order (§4.2 / §4.3).
CHECKS: dict[str, str] = {
    "number_words": "words",
    "char_repetition": "char_repetition",
    "word_repetition": "word_repetition",
    "special_characters": "special_characters",
    "stopwords": "stopwords",
    "flagged_words": "flagged_words",
    "punctuation": "punctuation",
    "common_words": "common_words",
    "lang_id": "lang_score",
    "perplexity": "perplexity",
}
