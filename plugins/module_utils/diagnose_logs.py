# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Error-log summaries: identical lines counted, distinct messages with count, first and last time.

A crash loop writes the same lines over and over; what an engineer needs is each distinct
message once, how often it came, when first and when last, and which known failure it is.
Lines are redacted (``redact.redact_text``) before they are grouped, so no summary can hold a
secret. Plain functions over text, unit-tested with real Node, PostgreSQL and Redis lines.
"""

from __future__ import annotations

import re

from ansible_collections.healthbutler.recovery.plugins.module_utils.redact import redact_text

# Common Node / PostgreSQL / Redis / kernel failures: name -> pattern (searched, case-insensitive).
SIGNATURES = {
    "eaddrinuse": re.compile(r"\bEADDRINUSE\b|address already in use", re.IGNORECASE),
    "enospc": re.compile(r"\bENOSPC\b|No space left on device", re.IGNORECASE),
    "authentication_failed": re.compile(
        r"password authentication failed|authentication failed for user|\bWRONGPASS\b|\bNOAUTH\b|"
        r"invalid username-password pair", re.IGNORECASE),
    "read_only_transaction": re.compile(r"read-only transaction|\bREADONLY\b You can't write", re.IGNORECASE),
    "too_many_clients": re.compile(r"too many clients|remaining connection slots are reserved|"
                                   r"too many connections for role", re.IGNORECASE),
    "econnrefused": re.compile(r"\bECONNREFUSED\b|Connection refused", re.IGNORECASE),
    "etimedout": re.compile(r"\bETIMEDOUT\b|Connection timed out|timeout expired", re.IGNORECASE),
    "enotfound": re.compile(r"\bENOTFOUND\b|\bEAI_AGAIN\b|could not translate host name|"
                            r"Name or service not known", re.IGNORECASE),
    "oom": re.compile(r"JavaScript heap out of memory|Reached heap limit|Out of memory: Killed process|"
                      r"out of memory", re.IGNORECASE),
}

# Leading time stamps: PM2 ``log_date_format`` (2026-12-01T21:50:00.123+00:00: ...), ISO, and
# PostgreSQL's ``%m [%p]`` prefix (2026-12-01 21:50:00.123 UTC [4242] ...).
_STAMP = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\s?(?:Z|[+-]\d{2}:?\d{2}|[A-Z]{2,5}))?)"
    r":?\s+(?:\[\d+\]\s+)?")
# Redis: ``4242:M 01 Dec 2026 21:50:00.123 # message``
_REDIS_STAMP = re.compile(r"^\d+:[A-Z] (?P<ts>\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2}(?:\.\d+)?) [#*.-] ")
# ``node:internal...:123`` / ``at Server.listen (node:net:1872:7)`` stack frames: noise, not messages.
# Node's dump of an error object (``  code: 'EADDRINUSE',``) repeats the message's facts: noise too.
_STACK_FRAME = re.compile(r"^\s*at\s|^\s*\^+\s*$|^\s*$|^node:[\w/]+:\d+$|^\s*\{$|^\s*\}$|^\s+[a-z]\w*: ")


def split_stamp(line):
    """(time stamp or None, the message without it) of one log line."""
    for rx in (_STAMP, _REDIS_STAMP):
        m = rx.match(line)
        if m:
            return m.group("ts"), line[m.end():].strip()
    return None, line.strip()


def signatures_of(text, signatures=None):
    """The names of the known signatures ``text`` shows, in the table's order."""
    return [name for name, rx in (signatures or SIGNATURES).items() if rx.search(text or "")]


def count_signatures(lines, signatures=None):
    """{signature: number of lines showing it} for every known signature."""
    table = signatures or SIGNATURES
    return {name: sum(1 for line in lines or () if rx.search(line)) for name, rx in table.items()}


def summarize(lines, max_distinct=10, max_len=300, extra_secrets=()):
    """Group identical messages of ``lines`` (time stamps set aside, stack frames skipped).

    Returns {lines, distinct, shown, messages: [{message, count, first, last, signatures}],
    signatures: {name: count}}; messages most frequent first (ties: the most recent first).
    ``first``/``last`` are the lines' own time stamps (None when the log writes none).
    Every message is redacted before grouping.
    """
    groups = {}
    order = 0
    for raw in lines or ():
        stamp, message = split_stamp(str(raw))
        if _STACK_FRAME.search(message) or _STACK_FRAME.search(str(raw)):
            continue
        message = redact_text(message, extra_secrets)[:max_len]
        order += 1
        group = groups.get(message)
        if group is None:
            group = groups[message] = {"message": message, "count": 0, "first": stamp, "last": stamp,
                                       "signatures": signatures_of(message), "_last_seen": order}
        group["count"] += 1
        group["_last_seen"] = order
        if stamp:
            group["first"] = group["first"] or stamp
            group["last"] = stamp
    ranked = sorted(groups.values(), key=lambda g: (-g["count"], -g["_last_seen"]))
    messages = [{k: v for k, v in g.items() if not k.startswith("_")} for g in ranked[:max_distinct]]
    counted = count_signatures([g["message"] for g in groups.values() for _repeat in range(g["count"])])
    return {"lines": order, "distinct": len(groups), "shown": len(messages), "messages": messages,
            "signatures": {k: v for k, v in counted.items() if v}}


def one_line(summary, keep=3):
    """``"Error: listen EADDRINUSE ... x10; ..."``: the top messages of a ``summarize`` result."""
    parts = ["%s (x%s)" % (m["message"][:160], m["count"]) for m in (summary or {}).get("messages", [])[:keep]]
    return "; ".join(parts)
