#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)

from __future__ import absolute_import, division, print_function

DOCUMENTATION = r"""
---
module: job_wait
short_description: Wait for an async job, with a progress line every so often instead of a retry line per poll
version_added: "0.3.0"
description:
  - Polls M(ansible.builtin.async_status) for O(jid) every O(poll) seconds inside one task, so the job's end is
    seen within a fraction of a second, and prints one status line every O(report_every) seconds - the elapsed
    time and the last line of O(progress_file) (e.g. the replayed LSN against the target) - instead of the
    C(FAILED - RETRYING) line per poll of an C(until) loop.
  - Returns the job's own result; fails as the job failed, or when O(timeout) passes.
options:
  jid:
    description: The async job id, C(ansible_job_id) of the task launched with C(poll=0).
    type: str
    required: true
  timeout:
    description: Seconds to wait at most.
    type: int
    default: 3600
  poll:
    description:
      - Seconds between two looks at the job when it cannot be waited on from the host. While the job runs, the
        wait happens on the host (a shell loop on the job's results file, every 0.1 s, up to O(report_every)
        seconds), and M(ansible.builtin.async_status) is asked only when that file changes or the loop ends.
    type: float
    default: 0.5
  report_every:
    description: Seconds between two progress lines (10 to 30 reads well on a console).
    type: int
    default: 15
  progress_file:
    description: A file on the host whose last line says how far the job is.
    type: str
  what:
    description: What the job does, for the progress line.
    type: str
    default: job
  cleanup:
    description: Remove the job's result file once read.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: It only reads the job's status, so it runs unchanged under C(--check).
notes:
  - An action on the controller; each poll runs M(ansible.builtin.async_status) on the host.
author:
  - Health Butler SRE (@healthbutler)
"""

EXAMPLES = r"""
- name: Wait for the replay, a line every 15 s
  healthbutler.recovery.job_wait:
    jid: "{{ pitr_job.ansible_job_id }}"
    timeout: 4200
    progress_file: /var/lib/healthbutler-recovery/runs/20261202T031500Z-recover-db/pitr-progress.log
    what: WAL replay
  register: pitr_result
"""

RETURN = r"""
finished:
  description: 1 once the job ended (the job's own keys are returned beside it).
  returned: always
  type: int
waited_s:
  description: Seconds this task waited.
  returned: always
  type: float
polls:
  description: How many times the job was looked at.
  returned: always
  type: int
"""
