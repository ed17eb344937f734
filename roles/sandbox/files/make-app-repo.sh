#!/bin/sh
# Create the stand-in app's git repository: one commit and one tag per release.
# usage: make-app-repo.sh <source dir> <app dir> <tag>...
set -eu
src=$1; dest=$2; shift 2
mkdir -p "$dest"
cd "$dest"
git init -q -b main .
git config user.name "Health Butler CI"
git config user.email "ci@healthbutler.example"
cp -R "$src"/. .
for tag in "$@"; do
  echo "${tag#v}" > VERSION
  git add -A
  git commit -q -m "release $tag"
  git tag -a "$tag" -m "release $tag"
done
echo "created $(git describe --tags)"
