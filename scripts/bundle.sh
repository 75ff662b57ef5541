#!/usr/bin/env bash
# Builds the single-file bundle of MXFlex: dist/mxflex.js (or the path given), with every npm
# package inlined and the web client + docs/openapi.yaml embedded (lib/assets_data.ts), so
# it runs from any directory with nothing but Deno:
#
#   deno run --unstable-kv --allow-net --allow-read --allow-write --allow-env --allow-sys \
#     dist/mxflex.js -config mxflex.yaml
#
# Usage: scripts/bundle.sh [output.js]   (relative paths are relative to the repository)
# Env:   DENO=/path/to/deno (default: deno on PATH)
#        MXFLEX_ASSETS=check  only verify lib/assets_data.ts is current instead of
#                             regenerating it (CI, tests: never modifies the tree)
set -euo pipefail
cd "$(dirname "$0")/.."
deno="${DENO:-deno}"
out="${1:-dist/mxflex.js}"
if [ "${MXFLEX_ASSETS:-write}" = check ]; then
  "$deno" run --allow-read=. scripts/gen_assets.ts --check
else
  "$deno" run --allow-read=. --allow-write=lib/assets_data.ts scripts/gen_assets.ts
fi
# --platform deno keeps node:/Deno APIs; --packages bundle inlines npm packages (the result
# imports nothing from the npm cache). Type checking is `deno task check`'s job.
"$deno" bundle --platform deno --packages bundle -o "$out" main.ts
