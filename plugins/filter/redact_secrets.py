# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
name: redact_secrets
short_description: Mask secrets in dicts, .env text and log lines
version_added: 0.1.0
author:
  - Health Butler SRE (@healthbutler)
description:
  - "Masks the values of secret-looking keys (names containing C(SECRET), C(PASSWORD), C(TOKEN), C(CREDENTIAL),
    C(PRIVATE), or a word C(KEY)/C(...KEY)/C(AUTH)/C(PASS)), credentials inside URLs (C(scheme://user:****@host)),
    SQL C(PASSWORD '...') and bearer tokens."
  - A dict or list is redacted recursively; a string is treated as free text (log lines) unless I(format=env).
  - "With I(format=env) the string is C(.env) text: comments are dropped and secret values masked - the runbook's
    C(cat .env | grep -v '^#') made safe. I(format=keys) returns C([{key, set, value}]) instead: show the keys and
    whether each is set, values redacted."
  - The same functions are importable by modules from C(plugins/module_utils/redact.py).
options:
  _input:
    description: A dict, a list, or text.
    type: raw
    required: true
  format:
    description: How to read a string input.
    type: str
    choices: [text, env, keys]
    default: text
  values:
    description: Literal secret values to mask wherever they occur (e.g. a known password).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Show the app's .env keys, whether each is set, values redacted
  ansible.builtin.debug:
    msg: "{{ lookup('ansible.builtin.file', hb_app_env_file) | healthbutler.recovery.redact_secrets(format='keys') }}"

- name: Log lines without credentials
  ansible.builtin.debug:
    msg: "{{ pm2_log.stdout_lines | healthbutler.recovery.redact_secrets }}"

- name: A config dict
  ansible.builtin.debug:
    msg: "{{ {'DATABASE_URL': 'postgresql://app:pw@db/hb', 'PORT': 3000} | healthbutler.recovery.redact_secrets }}"
    # -> {'DATABASE_URL': 'postgresql://app:********@db/hb', 'PORT': 3000}
"""

RETURN = r"""
_value:
  description: The input with secrets replaced by C(********); same shape, or C([{key, set, value}]) for format=keys.
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.healthbutler.recovery.plugins.module_utils.redact import (
    env_key_report,
    redact_env_text,
    redact_mapping,
    redact_text,
)


def redact_secrets(data, format="text", values=None):  # noqa: A002 - the documented option name
    values = [str(v) for v in values or ()]
    if isinstance(data, (dict, list, tuple)):
        return redact_mapping(data, values)
    if data is None:
        return None
    if format == "text":
        return redact_text(str(data), values)
    if format == "env":
        return redact_text(redact_env_text(str(data)), values)
    if format == "keys":
        return [dict(row, value=redact_text(row["value"], values)) for row in env_key_report(str(data))]
    raise AnsibleFilterError("redact_secrets: format must be one of text, env, keys; got %r" % (format,))


class FilterModule:
    def filters(self):
        return {"redact_secrets": redact_secrets}
