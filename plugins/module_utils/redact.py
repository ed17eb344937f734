# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Mask secrets in mappings, ``.env`` text and log lines.

Plain functions so modules (on managed hosts) and the ``redact_secrets``
filter (on the controller) share one implementation:

- ``redact_mapping``: values of secret-looking keys (``*SECRET*``, ``*PASSWORD*``,
  ``*TOKEN*``, ``*KEY*``...) and credentials inside URL values, recursively.
- ``redact_env_text``: ``.env`` text, comments dropped, values of secret keys masked.
- ``env_key_report``: the runbook's ``cat .env`` made safe: keys, set or not, redacted value.
- ``redact_text``: free text (log lines, SQL): URL credentials, ``KEY=value``,
  ``"key": "value"``, ``PASSWORD '...'`` and bearer tokens.
"""

from __future__ import annotations

import re

MASK = "********"

# Key names: these words anywhere (``PGPASSWORD``, ``JWT_SECRET``, ``githubToken``)...
SECRET_KEY_WORDS = ("secret", "password", "passwd", "token", "credential", "private")
# ...or a word of the key (split on ``_``, ``-``, ``.`` and camelCase) that is one of these or ends
# in "key" (``SMS_API_KEY``, ``apiKey``, ``REDISCLI_AUTH``), so ``evicted_keys`` is no secret.
SECRET_KEY_PARTS = ("key", "pass", "pwd", "auth", "apikey")
_KEY_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

# scheme://user:password@host -> scheme://user:********@host (also scheme://:password@host)
_URL_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)(?P<secret>[^\s@/'\"]+)(?=@)")
_KEY_PART = r"[A-Za-z0-9_.-]*(?:secret|password|passwd|token|credential|private|key|pass|pwd|auth)"
# KEY=value / KEY: value / "key": "value" / key='value'
_ASSIGNMENT = re.compile(
    r"(?P<head>(?P<q>[\"']?)(?P<key>%s)(?P=q)\s*(?:=|:)\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&}\]]+)" % _KEY_PART,
    re.IGNORECASE)
# SQL: PASSWORD 'x'  /  Authorization: Bearer x
_SQL_PASSWORD = re.compile(r"(?P<head>\bPASSWORD\s+)(?P<value>'(?:[^']|'')*'|\$\$.*?\$\$)", re.IGNORECASE)
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)


def is_secret_key(key):
    """True when ``key`` looks like it names a secret (``JWT_SECRET``, ``db_password``, ``apiKey``)."""
    key = str(key)
    lowered = key.lower()
    if lowered in ("key", "keys"):  # a bare "key" names something (dict items, .env rows), it holds no secret
        return False
    if any(word in lowered for word in SECRET_KEY_WORDS):
        return True
    parts = [p.lower() for p in _KEY_SPLIT.split(key) if p]
    return any(p in SECRET_KEY_PARTS or (p.endswith("key") and len(p) > 3) for p in parts)


def redact_url(value):
    """Mask the password inside any ``scheme://user:password@host`` of ``value``."""
    return _URL_CREDENTIALS.sub(lambda m: m.group("head") + MASK, value)


def _mask_value(match):
    value = match.group("value")
    if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) >= 2:
        return match.group("head") + value[0] + MASK + value[0]
    return match.group("head") + MASK


def redact_text(text, extra_values=()):
    """Mask secrets in free text: URL credentials, secret assignments, SQL passwords, bearer tokens.

    ``extra_values`` are literal secrets known to the caller (masked wherever they occur).
    """
    if text is None:
        return None
    text = str(text)
    for value in sorted((v for v in extra_values if v and len(str(v)) >= 4), key=len, reverse=True):
        text = text.replace(str(value), MASK)
    text = redact_url(text)
    text = _SQL_PASSWORD.sub(_mask_value, text)
    text = _BEARER.sub(lambda m: m.group("head") + MASK, text)
    return _ASSIGNMENT.sub(_mask_value, text)


def redact_mapping(data, extra_values=()):
    """Copy of ``data`` (dicts/lists nested) with secret values masked.

    The value of a secret-looking key is replaced whole (unless empty or None, so
    "set or not" stays visible); every other string goes through ``redact_text``.
    """
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if is_secret_key(key) and value not in (None, "") and not isinstance(value, (dict, list, bool)):
                out[key] = MASK
            else:
                out[key] = redact_mapping(value, extra_values)
        return out
    if isinstance(data, (list, tuple)):
        return [redact_mapping(v, extra_values) for v in data]
    if isinstance(data, str):
        return redact_text(data, extra_values)
    return data


def parse_env_text(text):
    """``.env`` text -> list of (key, value) in file order; comments and blank lines skipped."""
    pairs = []
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        pairs.append((key.strip(), value))
    return pairs


def redact_env_text(text):
    """``.env`` text with comments dropped and secret values masked (``grep -v '^#'`` made safe)."""
    lines = []
    for key, value in parse_env_text(text):
        value = MASK if is_secret_key(key) and value else redact_text(value)
        lines.append("%s=%s" % (key, value))
    return "\n".join(lines) + ("\n" if lines else "")


def env_key_report(text):
    """The runbook's ``cat .env`` step: [{key, set, value}] with secret values masked."""
    return [{"key": key, "set": bool(value),
             "value": (MASK if value else "") if is_secret_key(key) else redact_text(value)}
            for key, value in parse_env_text(text)]
