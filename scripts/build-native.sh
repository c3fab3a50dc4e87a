#!/usr/bin/env bash
# Builds the one native addon whose published prebuild is unusable: npm `sockopt` 2.0.1 ships a Mach-O file as its
# linux-x64 prebuild, so on Linux it must be compiled (node-gyp, bundled with npm; the Node headers come from the
# system, `nodedir`, so nothing is downloaded). Its install script stays denied in package.json: this is the only
# place it is built. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=node_modules/sockopt
[[ -d "$dir" ]] || { echo "build-native: run npm ci first" >&2; exit 1; }
if node -e "require('./$dir')" 2>/dev/null && [[ -f "$dir/build/Release/sockopt.node" ]]; then exit 0; fi
nodedir=$(npm config get nodedir 2>/dev/null || true)
[[ -n "$nodedir" && "$nodedir" != "undefined" && -f "$nodedir/include/node/node_api.h" ]] || nodedir=/usr
gyp=$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
[[ -f "$gyp" ]] || gyp=/usr/share/nodejs/npm/node_modules/node-gyp/bin/node-gyp.js
[[ -f "$gyp" ]] || gyp=$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js
log=$(mktemp)
if ! (cd "$dir" && node "$gyp" rebuild --nodedir="$nodedir") >"$log" 2>&1; then
  cat "$log" >&2
  echo "build-native: building sockopt failed (needs make, g++ and python3)" >&2
  exit 1
fi
rm -f "$log"
node -e "require('./$dir')"
echo "build-native: sockopt built"
