# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Where a drill reaches the app, which app hosts a fault touches, and which hosts a recovery runs on.

One-host sandbox: every group is ``localhost`` over a local connection, the app has one URL. A fleet: each
app host has its own URL, ``http://<ansible_host>:<port>``, and a fault scoped to the app touches at most
``max_app_hosts`` of them (the blast radius); the other app hosts must keep serving.
"""

from __future__ import annotations

import ipaddress

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


def is_local(address):
    """An empty address (a local connection) or a loopback name."""
    return not address or address in LOCAL_NAMES


def endpoints(app_hosts, addresses, local_url, port):
    """``{host: base URL}`` of every app host; a local host answers at ``local_url``."""
    out = {}
    for host in app_hosts or ["localhost"]:
        address = addresses.get(host, "")
        if is_local(address):
            out[host] = local_url.rstrip("/")
        else:
            shown = "[%s]" % address if ":" in address else address
            out[host] = "http://%s:%s" % (shown, port)
    return out


def fault_app_hosts(app_hosts, max_app_hosts):
    """The app hosts a fault may touch: the first ``max_app_hosts`` of the group (at least one)."""
    hosts = list(app_hosts or ["localhost"])
    return hosts[:max(int(max_app_hosts), 1)]


def recovery_limit(scenario, all_hosts, app_hosts, faulted):
    """The ``--limit`` of an app-scoped recovery: every host but the app hosts the fault did not touch.

    ``None`` (no limit) when the fault is not scoped to the app or every app host was touched.
    """
    spared = [h for h in app_hosts or [] if h not in faulted]
    if scenario.get("scope") != "app" or not spared:
        return None
    return [h for h in all_hosts if h not in spared]


def apart(addresses, app_hosts, db_host):
    """``None`` when the db host is a separate machine, reached by IP, from every app host; else why not."""
    db_address = addresses.get(db_host, "")
    if is_local(db_address):
        return "the db host %s is this machine (a network fault needs separate app and db hosts)" % db_host
    try:
        ipaddress.ip_address(db_address)
    except ValueError:
        return "the db host %s is reached by name (%s), not an IP address a route can name" % (db_host, db_address)
    shared = [h for h in app_hosts or [] if addresses.get(h, "") == db_address or is_local(addresses.get(h, ""))]
    if shared:
        return "app host(s) %s share the db host's address or this machine" % ", ".join(shared)
    return None


def availability(scenario, addresses, app_hosts, db_host):
    """Why a scenario cannot run on these hosts (``unavailable: ...``), or None."""
    if scenario.get("needs") == "separate_hosts":
        why = apart(addresses, app_hosts, db_host)
        if why:
            return "unavailable: %s" % why
    return None
