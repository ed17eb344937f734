#!/usr/bin/env bash
# Run a command from a copy of this checkout inside a mode-0700 directory, as CI may clone it: there the
# PostgreSQL OS user (and any other user a task becomes) cannot read a file of the checkout. A checkout that
# is already private is used in place. The copy takes the working tree as it is (committed or not), shares
# .git (tests clone the project as AWX does), shares .venv and .tools, and is removed afterwards.
#   scripts/private-checkout.sh COMMAND [ARG...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if ! runuser -u postgres -- test -r "$ROOT/Makefile" 2>/dev/null; then
  echo "private-checkout: $ROOT is not readable by postgres; running in place"
  exec "$@"
fi
parent=$(mktemp -d "${TMPDIR:-/tmp}/hb-private-XXXXXX")
chmod 700 "$parent"
trap 'rm -rf "$parent"' EXIT
copy=$parent/hb
mkdir "$copy"
git ls-files -z --cached --others --exclude-standard \
  | rsync -a --from0 --files-from=- --ignore-missing-args ./ "$copy/"
# Tests that clone the project as AWX or a user would (git clone <checkout>) need its history too.
rsync -a .git "$copy/"
ln -s "$ROOT/.venv" "$copy/.venv"
ln -s "$ROOT/.tools" "$copy/.tools"
mkdir -p "$copy/.collections/ansible_collections/healthbutler"
ln -s "$copy" "$copy/.collections/ansible_collections/healthbutler/recovery"
echo "private-checkout: running from $copy (parent mode 0700, not readable by postgres)"
cd "$copy"
rc=0
ANSIBLE_CONFIG=$copy/ansible.cfg ANSIBLE_HOME=$copy/.ansible "$@" || rc=$?
exit $rc
