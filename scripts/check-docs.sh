#!/usr/bin/env bash
# ansible-doc must render every module, callback and filter of the collection.
# Filters are documented either inline (DOCUMENTATION in the .py) or in a <name>.yml beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
render() { # type name
  local out
  if ! out=$(ansible-doc -t "$1" "healthbutler.recovery.$2" 2>&1) || ! grep -q "healthbutler.recovery.$2" <<<"$out"; then
    echo "ansible-doc cannot render $1 $2:"; tail -5 <<<"$out"; status=1
  fi
}
names() { # dir ext
  for f in "$1"/*."$2"; do [[ -e $f ]] && basename "${f%.*}"; done | grep -v '^__init__$' || true
}
for n in $(names plugins/modules py); do render module "$n"; done
for n in $(names plugins/callback py); do render callback "$n"; done
for n in $(names plugins/filter yml); do render filter "$n"; done
for f in plugins/filter/*.py; do
  [[ -e $f ]] && grep -q '^DOCUMENTATION' "$f" && render filter "$(basename "${f%.py}")"
done
[[ $status == 0 ]] && echo "ansible-doc: every plugin renders"
exit $status
