#!/usr/bin/env bash
# Installs Stoplight Prism (pinned in scripts/prism/package-lock.json) into .tools/prism,
# for tests/contract/test_prism.py, which runs this script itself on first use.
# Needs node >= 18 and npm (Debian: apt-get install -y nodejs npm). Idempotent: does nothing
# when the installed lock file already matches. Prints the path of the prism executable.
#   scripts/install-prism.sh [dest-dir]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/../.tools/prism}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
bin="$dest/node_modules/.bin/prism"

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "install-prism: $tool not found (apt-get install -y nodejs npm)" >&2; exit 1; }
done

if [ -x "$bin" ] && cmp -s "$here/prism/package-lock.json" "$dest/package-lock.json"; then
  echo "$bin"
  exit 0
fi

# build output: keep it out of git without touching the top-level .gitignore
printf '*\n' > "$dest/.gitignore"
cp "$here/prism/package.json" "$here/prism/package-lock.json" "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >&2)
"$bin" --version >/dev/null
echo "$bin"
