#!/usr/bin/env bash
# The one way to regenerate the low-level client from openapi.yaml.
#
#   ./generate.sh                 regenerate generated_client/kling_i2v_api/ and the
#                                 overlay's generated modules (below)
#   ./generate.sh --check         regenerate into a temporary folder and fail,
#                                 naming the files, if the committed copy differs
#   ./generate.sh --spec F --out D   generate from another spec into D, and the overlay's
#                                 modules into D/../overlay (tests use it)
#
# Besides openapi-python-client's output (with the overrides in generator-templates/),
# generate_extras.py writes what the overlay needs at run time in its ready form:
# kling_i2v_api/openapi.json and kling_i2v_api/validators.py, and the overlay's
# overlays/kling_i2v/_create_fields.py and _fields_doc.py. All are covered by --check.
#
# The generator and ruff are pinned in pyproject.toml ([project.optional-dependencies]
# generate); this script installs exactly those into the tool environment when they
# are missing, so every run formats byte for byte the same.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
spec="$root/openapi.yaml"
out="$root/generated_client/kling_i2v_api"
overlay="$root/overlays/kling_i2v"
overlay_files=(_create_fields.py _fields_doc.py)
check=0
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    --spec) spec=$(realpath "$2"); shift ;;
    --out) out=$(realpath -m "$2"); overlay=$(dirname "$out")/overlay; shift ;;
    -h|--help) sed -n 2,19p "$0"; exit 0 ;;
    *) echo "generate.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

venv="${KLING_TOOLS_VENV:-$root/.venv}"
py="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"

# The pins, read from pyproject.toml so they are declared once.
mapfile -t pins < <("$venv/bin/python" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["generate"]))
PY
)
if ! "$venv/bin/python" - "${pins[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
for pin in sys.argv[1:]:
    name, _, wanted = pin.partition("==")
    try:
        if version(name) != wanted:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  echo "generate.sh: installing ${pins[*]} into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Generate outside the repository: ruff must not pick up any project config, and the
# post-hooks must not leave caches in the output.
PATH="$venv/bin:$PATH" RUFF_NO_CACHE=true \
  "$venv/bin/openapi-python-client" generate \
  --path "$spec" --config "$root/openapi-generator.yaml" \
  --custom-template-path "$root/generator-templates" \
  --meta none --output-path "$work/kling_i2v_api" >"$work/log" 2>&1 \
  || { cat "$work/log" >&2; exit 1; }
if grep -q -i "warning\|error" "$work/log"; then
  # A schema the generator could not understand is skipped with a warning, which
  # would silently drop part of the API: treat it as a failure.
  cat "$work/log" >&2
  exit 1
fi
touch "$work/kling_i2v_api/py.typed"
mkdir "$work/overlay"
"$venv/bin/python" "$root/generate_extras.py" "$spec" "$work/kling_i2v_api" "$work/overlay"
# formatted the way the generator's post-hooks format its own output
(cd "$work" && export PATH="$venv/bin:$PATH" RUFF_NO_CACHE=true &&
  ruff check kling_i2v_api/validators.py overlay --fix-only --quiet --isolated --no-cache --select F401,I &&
  ruff format kling_i2v_api/validators.py overlay --quiet --isolated --no-cache)
find "$work/kling_i2v_api" \( -name __pycache__ -o -name .ruff_cache \) -prune -exec rm -rf {} +

if [ "$check" = 1 ]; then
  diff -r -q -x __pycache__ "$out" "$work/kling_i2v_api" >"$work/diff" 2>&1 || true
  for f in "${overlay_files[@]}"; do
    cmp -s "$overlay/$f" "$work/overlay/$f" || echo "Files $overlay/$f and <regenerated>/$f differ" >>"$work/diff"
  done
  if [ ! -s "$work/diff" ]; then
    echo "generate.sh --check: generated_client/ and the overlay's generated modules match $(basename "$spec")"
    exit 0
  fi
  echo "generate.sh --check: generated_client/ differs from what $(basename "$spec") produces:" >&2
  sed -e "s#$work/kling_i2v_api#<regenerated>#g" -e "s#$root/##g" "$work/diff" >&2
  echo "Run ./generate.sh and commit the result." >&2
  exit 1
fi

mkdir -p "$(dirname "$out")"
rm -rf "$out"
cp -r "$work/kling_i2v_api" "$out"
mkdir -p "$overlay"
for f in "${overlay_files[@]}"; do cp "$work/overlay/$f" "$overlay/$f"; done
echo "generate.sh: wrote ${out#"$root"/} and ${overlay_files[*]/#/${overlay#"$root"/}/}"
