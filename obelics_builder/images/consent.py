"""Consent signals carried by an image response: ``X-Robots-Tag`` AI directives and ``tdm-reservation``.

:func:`header_consent` returns the drop reason for a response's headers, or ``None`` when the image may be used:

* ``consent:x-robots-tag`` — an ``X-Robots-Tag`` header holds ``noai``, ``noimageai`` or ``noml`` for everyone, or
  for a user agent that names us (our product token, :data:`UA_TOKEN`) or is generic (``*``).  Header names and
  values are case-insensitive; a header may hold a comma list (``noindex, noai``) and several headers may be
  present.  The per-agent form is ``X-Robots-Tag: agentname: noai, noml`` — the agent name applies to the
  directives that follow it in the same header until another ``agent:`` prefix appears.  Directives that carry a
  value themselves (``max-image-preview: large``, ``unavailable_after: ...``) are not taken for agent names.
* ``consent:tdm-reservation`` — a ``tdm-reservation`` header whose value is ``1`` (W3C TDM Reservation Protocol).

Headers may be given as a mapping (single value per name; lists/tuples of values are accepted) or as a sequence of
``(name, value)`` pairs (e.g. ``aiohttp``'s ``CIMultiDictProxy.items()``, which keeps repeated headers).
"""
from __future__ import annotations

from typing import Any, Iterable

#: Our product token: the ``agentname`` a site uses to address this crawler (robots.txt and X-Robots-Tag).
UA_TOKEN = "obelics-builder"

#: X-Robots-Tag directives that withhold consent to AI/ML use.
AI_DIRECTIVES = frozenset({"noai", "noimageai", "noml"})

#: Directives of the ``name: value`` form (their name is not an agent name).
_VALUED_DIRECTIVES = frozenset({
    "max-snippet", "max-image-preview", "max-video-preview", "unavailable_after", "unavailable-after",
})

#: Agent names that address every crawler.
GENERIC_AGENTS = frozenset({"*"})

REASON_X_ROBOTS = "consent:x-robots-tag"
REASON_TDM = "consent:tdm-reservation"
REASON_ROBOTS_TXT = "consent:robots-txt"


def _pairs(headers: Any) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items: Iterable = headers.items() if hasattr(headers, "items") else headers
    out: list[tuple[str, str]] = []
    for name, value in items:
        if isinstance(value, (list, tuple)):
            out.extend((str(name), str(v)) for v in value)
        elif value is not None:
            out.append((str(name), str(value)))
    return out


def agent_matches(agent: str, ua_token: str = UA_TOKEN) -> bool:
    """Does an agent name address us?  Generic (``*``) or our product token (case-insensitive, ``/version`` ok)."""
    a = agent.strip().lower()
    if a in GENERIC_AGENTS:
        return True
    return a.split("/", 1)[0] == ua_token.lower()


def x_robots_denies(value: str, ua_token: str = UA_TOKEN) -> bool:
    """True if one ``X-Robots-Tag`` header value withholds AI consent from us (see module docstring)."""
    return bool(x_robots_directives(value, ua_token))


def x_robots_directives(value: str, ua_token: str = UA_TOKEN) -> set[str]:
    """The AI directives (lowercased, of :data:`AI_DIRECTIVES`) one ``X-Robots-Tag`` header value addresses to
    us: for everyone, ``*`` or our product token (see module docstring)."""
    found: set[str] = set()
    agent: str | None = None  # None = applies to everyone
    for raw in str(value).split(","):
        token = raw.strip()
        if not token:
            continue
        if ":" in token:
            head, rest = token.split(":", 1)
            name = head.strip().lower()
            if name not in _VALUED_DIRECTIVES and name and " " not in name:
                agent = name
                token = rest.strip()
                if not token:
                    continue
            else:
                continue  # a valued directive: never an AI directive
        if token.lower() in AI_DIRECTIVES and (agent is None or agent_matches(agent, ua_token)):
            found.add(token.lower())
    return found


def tdm_reserved(value: str) -> bool:
    return str(value).strip().strip('"').strip() == "1"


def header_consent(headers: Any, ua_token: str = UA_TOKEN) -> str | None:
    """The consent drop reason for these response headers, else None."""
    for name, value in _pairs(headers):
        n = name.strip().lower()
        if n == "x-robots-tag" and x_robots_denies(value, ua_token):
            return REASON_X_ROBOTS
        if n == "tdm-reservation" and tdm_reserved(value):
            return REASON_TDM
    return None


def ua_token_from(user_agent: str | None) -> str:
    """``"obelics-builder/0.1 (+https://...)"`` -> ``"obelics-builder"``."""
    if not user_agent:
        return UA_TOKEN
    return str(user_agent).strip().split()[0].split("/", 1)[0].lower() or UA_TOKEN
