# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""The argument_spec entries several modules share: one name per option across the collection.

Each function returns a fresh dict for a module to merge into its own ``argument_spec``; the options are
documented once, in the doc fragment named beside each function (``plugins/doc_fragments/``). The older
names stay as aliases so that existing playbooks keep working (``bindir``, ``port``, ``socket_dir``,
``os_user``). ``meta/runtime.yml``'s action group ``postgres`` holds the modules that take them, so
``module_defaults: {group/healthbutler.recovery.postgres: {pg_bindir: ..., pg_port: ...}}`` sets them once.
"""

from __future__ import annotations


def pg_bindir(required=False):
    """``pg_bindir`` (alias ``bindir``): the PostgreSQL binaries; ``PATH`` when omitted and not required."""
    return {"pg_bindir": {"type": "path", "required": required, "aliases": ["bindir"]}}


def pg_os_user():
    """``pg_os_user`` (alias ``os_user``): the OS user that owns the cluster."""
    return {"pg_os_user": {"type": "str", "default": "postgres", "aliases": ["os_user"]}}


def postgres_client():
    """``pg_bindir`` (optional) and ``pg_port``: doc fragment ``healthbutler.recovery.postgres.client``."""
    spec = pg_bindir()
    spec["pg_port"] = {"type": "int", "default": 5432, "aliases": ["port"]}
    return spec


def postgres_server(required=True):
    """``pg_bindir``, ``pg_os_user``, ``pg_port``, ``pg_socket_dir``: doc fragment ``healthbutler.recovery.postgres``.

    ``required=False`` (pg_cluster) makes ``pg_bindir`` and ``pg_socket_dir`` optional; the module's own
    documentation then says so over the fragment's ``required: true``.
    """
    spec = postgres_client()
    spec["pg_bindir"]["required"] = required
    spec.update(pg_os_user())
    spec["pg_socket_dir"] = {"type": "path", "required": required, "aliases": ["socket_dir"]}
    return spec


def pm2_options():
    """``pm2_bin`` and ``pm2_home``: doc fragment ``healthbutler.recovery.pm2``."""
    return {
        "pm2_bin": {"type": "path", "default": "pm2"},
        "pm2_home": {"type": "path"},
    }


def backup_dir_with_alias():
    """backup_location with ``backup_dir`` also taking ``path``, its old name in backup_catalog and backup_retention."""
    spec = backup_location()
    spec["backup_dir"]["aliases"] = ["path"]
    return spec


def backup_location(wal_required=False):
    """``backup_dir`` (required) and ``wal_dir``: doc fragment ``healthbutler.recovery.backup_location``."""
    return {
        "backup_dir": {"type": "path", "required": True},
        "wal_dir": {"type": "path", "required": wal_required},
    }
