#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: proxy_traffic
short_description: Give a share of requests at the nginx proxy to the app, the rest to the maintenance page
version_added: "0.2.0"
description:
  - Writes the include file the proxy's configuration reads (C(traffic.conf)) - an C(hb_app) upstream with the
    given app hosts and a C(split_clients) block sending O(percent) % of requests to it, the rest to the
    maintenance page (503 with C(Retry-After)) - then tests the whole configuration with C(nginx -t) and reloads
    the running nginx with SIGHUP, waiting until the workers of the old configuration are gone.
  - The file it replaces is kept as C(traffic.conf.prev); when C(nginx -t) fails the previous file is put back
    and nothing is reloaded.
options:
  percent:
    description: Share of requests (0-100) the app gets.
    type: int
    required: true
  upstreams:
    description: The app hosts getting that share, as C(host:port) as the proxy reaches them.
    type: list
    elements: str
    required: true
  path:
    description: The include file (the site model's C(hb_proxy_dir)/traffic.conf).
    type: path
    required: true
  split_key:
    description:
      - What nginx hashes to split requests. V($request_id) splits every request on its own (right for probe
        traffic from one address); V($remote_addr$http_user_agent) keeps a user on one side.
    type: str
    default: $request_id
  nginx_bin:
    description: The nginx binary.
    type: path
    default: /usr/sbin/nginx
  nginx_conf:
    description: Main configuration to test (C(nginx -t -c)); default nginx's own.
    type: path
  nginx_prefix:
    description: Prefix of an nginx started with C(-p) (the sandbox's); its error log goes there too.
    type: path
  pid_file:
    description: Pid file of the nginx master to reload.
    type: path
    required: true
  reload:
    description: Reload nginx after a change (V(false) only writes and tests the file, for an nginx not yet started).
    type: bool
    default: true
notes:
  - Supports check mode and diff mode.
author:
  - Health Butler SRE (@healthbutler)
"""

EXAMPLES = r"""
- name: First step of gradual traffic, to the canary only
  healthbutler.recovery.proxy_traffic:
    percent: 10
    upstreams: ["10.0.1.11:3000"]
    path: /etc/nginx/healthbutler/traffic.conf
    pid_file: /run/nginx.pid
"""

RETURN = r"""
percent:
  description: The share the app gets after the task.
  returned: always
  type: int
previous_percent:
  description: The share before (null when the file was absent or not ours).
  returned: always
  type: int
preserved:
  description: Where the replaced file was kept (null when nothing was replaced).
  returned: always
  type: str
reloaded:
  description: Whether nginx was reloaded and its old workers are gone.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils.proxy_traffic import (
    current_percent,
    master_pid,
    nginx_test_argv,
    read_text,
    reload,
    render,
    write_atomic,
)
from ansible_collections.healthbutler.recovery.plugins.module_utils.runner import RecoveryError, fail_from


def main():
    module = AnsibleModule(
        argument_spec=dict(
            percent=dict(type="int", required=True),
            upstreams=dict(type="list", elements="str", required=True),
            path=dict(type="path", required=True),
            split_key=dict(type="str", default="$request_id", no_log=False),
            nginx_bin=dict(type="path", default="/usr/sbin/nginx"),
            nginx_conf=dict(type="path"),
            nginx_prefix=dict(type="path"),
            pid_file=dict(type="path", required=True),
            reload=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        text = render(p["percent"], p["upstreams"], p["split_key"])
    except RecoveryError as exc:
        fail_from(module, exc)
    before = read_text(p["path"])
    result = dict(changed=before != text, percent=p["percent"], previous_percent=current_percent(before),
                  preserved=None, reloaded=False)
    if result["changed"]:
        result["diff"] = {"before": before or "", "after": text, "before_header": p["path"], "after_header": p["path"]}
    if not result["changed"] or module.check_mode:
        module.exit_json(**result)
    if before is not None:
        result["preserved"] = p["path"] + ".prev"
        write_atomic(result["preserved"], before)
    write_atomic(p["path"], text)
    rc, out, err = module.run_command(nginx_test_argv(p["nginx_bin"], p["nginx_conf"], p["nginx_prefix"]))
    if rc != 0:
        if before is not None:
            write_atomic(p["path"], before)
        module.fail_json(msg="nginx -t refused the new traffic split; %s kept as it was: %s" % (
            p["path"], (err or out).strip()[-1500:]), rc=rc, **result)
    if p["reload"] and master_pid(p["pid_file"]) is not None:
        try:
            result["reloaded"] = reload(p["pid_file"])
        except (RecoveryError, OSError) as exc:
            module.fail_json(msg="cannot reload nginx: %s" % exc, **result)
    elif p["reload"]:
        module.fail_json(msg="nginx is not running (no live pid in %s): the split was written, not applied" % (
            p["pid_file"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
