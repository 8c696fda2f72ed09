#!/bin/sh
# Builds a small repository of this project's sources with 12 commits of edits, for `git log -p`.
set -e
repo=$1
src=$(cd "$(dirname "$0")/../../.." && pwd)
rm -rf "$repo" && mkdir -p "$repo" && cd "$repo"
git init -q
cp -r "$src/lib" "$src/native" .
git add -A && git -c user.email=bench@example.com -c user.name=bench commit -qm "sources"
for i in 1 2 3 4 5 6 7 8 9 10 11; do
  for f in $(ls lib/*.ts | sed -n "$i,\$p" | head -4); do sed -i "s/const /const  /; s/return /return  /" "$f"; done
  git -c user.email=bench@example.com -c user.name=bench commit -qam "edit $i"
done
