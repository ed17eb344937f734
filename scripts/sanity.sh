#!/usr/bin/env bash
# ansible-test sanity, as `make lint` and CI run it, on any checkout and offline from Galaxy:
# - ansible-test works only from a path ending in ansible_collections/healthbutler/recovery, so the
#   working tree (tracked and untracked-but-not-ignored files) is copied under .cache/ansible-test/tree/;
# - its pip bootstrap downloads get-pip from ci-files.testing.ansible.com: a stand-in under a
#   project-local HOME installs pip from a wheel fetched once from PyPI (`pip download pip==24.2`).
# The ignore files (tests/sanity/ignore-*.txt) are meant to stay absent or empty.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
CACHE=$ROOT/.cache/ansible-test
PIP_VERSION=24.2
PYTHON_VERSION=${SANITY_PYTHON:-3.11}

mkdir -p "$CACHE/wheels" "$CACHE/home/.ansible/test/cache"
if ! compgen -G "$CACHE/wheels/pip-$PIP_VERSION-*.whl" >/dev/null; then
  "$VENV/bin/pip" download --quiet --no-deps -d "$CACHE/wheels" "pip==$PIP_VERSION"
fi
WHEEL=$(compgen -G "$CACHE/wheels/pip-$PIP_VERSION-*.whl" | head -1)

# The stand-in for get-pip: ensurepip, then pip from the wheel, then whatever else was asked for.
cat > "$CACHE/home/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py" <<PY
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
rest = [a for a in args if not a.startswith("-") and not a.startswith("pip==")]
opts = [a for a in args if a.startswith("-")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "$WHEEL"])
if rest:
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + opts + rest)
PY

TREE=$CACHE/tree/ansible_collections/healthbutler/recovery
rm -rf "$CACHE/tree"
mkdir -p "$TREE"
git ls-files --cached --others --exclude-standard -z | while IFS= read -r -d '' f; do
  [[ -e $f || -L $f ]] && printf '%s\0' "$f"
done | xargs -0 cp -P --parents -t "$TREE"

cd "$TREE"
# A repository of its own: ansible-test lists files with git, and the checkout's .gitignore hides .cache/.
git init --quiet . && git add --all
HOME=$CACHE/home "$VENV/bin/ansible-test" sanity --venv --python "$PYTHON_VERSION" --color no "$@"
