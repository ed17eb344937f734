#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: run_journal
short_description: Journal a destructive run's intent and hold its host, so an interrupted run can be finished
version_added: "0.3.0"
description:
  - V(inspect) (read-only) tells whether this run is V(new), or finishes (V(resume)) or undoes (V(abort)) an
    interrupted run of the same kind on this host, and what became of that run's async job. It refuses while
    another run of the kind is alive, naming it.
  - V(begin) takes the lock C(<lock_dir>/<kind>.lock) and writes C(<run_dir>/run.json) before the first change.
    V(step) records a step and the facts a later run needs. V(end) closes the record and releases the lock.
  - V(stop_job) stops the async job recorded in O(run_dir)'s journal (abort, after V(begin) took the run over).
  - The action plugin of the same name adds the controller's identity (host, ansible-playbook pid and start time)
    and the live ansible-playbook processes of the controller, so a run knows whether the holder still runs.
options:
  state:
    description: What to do.
    type: str
    choices: [inspect, begin, step, end, stop_job]
    required: true
  kind:
    description: The kind of run (one lock per kind and host), e.g. V(recover-db).
    type: str
    required: true
  lock_dir:
    description: Directory of the locks on this host.
    type: path
    required: true
  run_dir:
    description: The run directory that holds C(run.json) (V(begin), V(step), V(end), V(stop_job)).
    type: path
  stamp:
    description: The run's UTC stamp (V(begin)).
    type: str
  inputs:
    description:
    - The run's inputs, as the user gave them (V(begin)).
    - With V(inspect), compared with the interrupted run's (RV(mismatch)).
    type: dict
    default: {}
  facts:
    description: Facts to remember (V(begin), V(step)).
    type: dict
    default: {}
  step:
    description:
      - The name of the step reached (V(step)), or a list of names reached together, recorded in one write
        (e.g. V([maintenance_on, app_stopped]) after two idempotent steps that a re-run may simply repeat).
    type: list
    elements: str
  status:
    description: How the run ended (V(end)).
    type: str
  files:
    description:
      - With V(end), files to write into O(run_dir) before the record is closed (plain file name -> text), e.g. the
        run's C(recovery.json) and C(recovery.md) - the reports and the close in one call.
    type: dict
    default: {}
  resume_of:
    description: With V(begin), the stamp of the interrupted run this run takes over.
    type: str
  takeover:
    description: Finish the interrupted run with this stamp even if it was started from another controller.
    type: str
  abort:
    description: Undo the interrupted run with this stamp.
    type: str
  controller:
    description: Set by the action plugin; the controller's host, pid and process start time.
    type: dict
    default: {}
  live:
    description: Set by the action plugin; C(pid:start) of the controller's live ansible-playbook processes.
    type: list
    elements: str
    default: []
notes:
  - Supports check mode; V(inspect) changes nothing, the other states report what they would write.
author:
  - Health Butler SRE (@healthbutler)
"""

EXAMPLES = r"""
- name: Is there an interrupted recovery on this host?
  healthbutler.recovery.run_journal:
    state: inspect
    kind: recover-db
    lock_dir: /var/lib/healthbutler/runs/locks
  register: journal

- name: Remember that the app was online before it was stopped
  healthbutler.recovery.run_journal:
    state: step
    kind: recover-db
    lock_dir: /var/lib/healthbutler/runs/locks
    run_dir: /var/lib/healthbutler/runs/20261202T031500Z-recover-db
    step: app_stopped
    facts: {app_was_online: true}
"""

RETURN = r"""
decision:
  description: V(inspect) - V(new), V(resume) or V(abort).
  returned: state is inspect
  type: str
record:
  description: The run record (the interrupted run's for V(inspect); this run's otherwise).
  returned: when there is one
  type: dict
job:
  description:
    - V(inspect) - the interrupted run's async job.
    - Its C(state) is V(none), V(running), V(finished), V(failed) or V(lost).
  returned: decision is resume or abort
  type: dict
done:
  description: V(inspect) - the steps the interrupted run reached, in order.
  returned: decision is resume or abort
  type: list
  elements: str
mismatch:
  description: V(inspect) - how this run's inputs differ from the interrupted run's, one line per input.
  returned: decision is resume
  type: list
  elements: str
stopped_pids:
  description: V(stop_job) - the processes signalled.
  returned: state is stop_job
  type: list
  elements: int
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.healthbutler.recovery.plugins.module_utils import run_journal as journal

NEEDS = {"begin": ("run_dir", "stamp"), "step": ("run_dir", "step"), "end": ("run_dir", "status"),
         "stop_job": ("run_dir",)}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["inspect", "begin", "step", "end", "stop_job"]),
            kind=dict(type="str", required=True),
            lock_dir=dict(type="path", required=True),
            run_dir=dict(type="path"),
            stamp=dict(type="str"),
            inputs=dict(type="dict", default={}),
            facts=dict(type="dict", default={}),
            step=dict(type="list", elements="str"),
            status=dict(type="str"),
            files=dict(type="dict", default={}),
            resume_of=dict(type="str"),
            takeover=dict(type="str"),
            abort=dict(type="str"),
            controller=dict(type="dict", default={}),
            live=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    missing = [name for name in NEEDS.get(p["state"], ()) if not p[name]]
    if missing:
        module.fail_json(msg="run_journal state=%s needs %s" % (p["state"], ", ".join(missing)))
    try:
        if p["state"] == "inspect":
            module.exit_json(changed=False, **journal.inspect(p["lock_dir"], p["kind"], p["controller"], p["live"],
                                                              takeover=p["takeover"], abort=p["abort"],
                                                              inputs=p["inputs"]))
        if module.check_mode:
            module.exit_json(changed=True, msg="check mode: would %s the %s journal" % (p["state"], p["kind"]))
        if p["state"] == "stop_job":
            record = journal.read_json(os.path.join(p["run_dir"], journal.RECORD)) or {}
            pids = journal.stop_job(record.get("facts", {}).get("job"))
            module.exit_json(changed=bool(pids), stopped_pids=pids)
        if p["state"] == "begin":
            record = journal.begin(p["lock_dir"], p["kind"], p["run_dir"], p["stamp"], p["inputs"], p["controller"],
                                   facts=p["facts"], resume_of=p["resume_of"])
        elif p["state"] == "step":
            record = journal.step(p["run_dir"], p["step"], p["facts"])
        else:
            record = journal.end(p["lock_dir"], p["kind"], p["run_dir"], p["status"], files=p["files"])
    except (journal.JournalError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, record=record)


if __name__ == "__main__":
    main()
