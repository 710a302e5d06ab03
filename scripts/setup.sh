#!/usr/bin/env bash
# Makes a fresh Debian 12 machine ready to build and run agentrace, then
# builds it. Idempotent and quick when nothing changed: each step checks
# before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Build and run-time dependencies of packages/bpf (see PLATFORM.md), and
# what deploy/build-image.sh and test/deploy.test.ts run containers with
# (podman with the runc runtime; mmdebstrap builds the image's base), and the
# Prometheus test/prometheus.test.ts scrapes the sidecar with, and the venv
# the Python MCP server of test/mcp.test.ts runs in.
DEBS=(clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config bpftool make g++ python3 python3-venv
  podman runc catatonit containernetworking-plugins mmdebstrap prometheus)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")
if ! command -v pnpm >/dev/null || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION"
  npm install -g --silent "pnpm@$PNPM_VERSION"
fi

# node-gyp builds the addon against the headers Node ships in /usr/include/node,
# so nothing is downloaded.
if [ -r /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi

# pnpm compares the lockfile with node_modules and returns at once when they match.
# errors only, but never silent: a stale lockfile must say so in CI
pnpm install --frozen-lockfile --loglevel=error

# The sidecar runs on the current Node LTS (24); bin/agentrace finds it here.
scripts/node24.sh >/dev/null

say "building"
pnpm -s build

# The OpenTelemetry apps the SDK is tested in (test/apps/*) are installed
# with npm, as users install theirs: one copy of @opentelemetry/api shared by
# the app and the SDK. Reinstalled only when their lockfile changed; the
# tests put the current SDK build into them.
for app in test/apps/*/; do
  stamp="$app/node_modules/.agentrace-lock"
  sum=$(sha256sum "$app/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    say "installing ${app%/} (npm)"
    (cd "$app" && npm ci --install-links --no-audit --no-fund --loglevel=error)
    echo "$sum" > "$stamp"
  fi
done

# The Python MCP server test/mcp.test.ts calls runs in its own venv, from
# PyPI as users install it. Reinstalled only when its requirements changed.
# One retry: where PyPI is unreachable but a local index is configured, pip's
# default five (with back-off) per package take minutes.
venv=test/python/.venv
stamp="$venv/.agentrace-requirements"
sum=$(sha256sum test/python/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
  say "installing test/python (pip)"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  # pip warns about every unreachable index it tries: shown only if it fails
  if ! "$venv/bin/pip" install --quiet --retries 1 -r test/python/requirements.txt > "$venv/pip.log" 2>&1; then
    cat "$venv/pip.log" >&2
    echo "pip could not install test/python/requirements.txt (above)" >&2
    exit 1
  fi
  echo "$sum" > "$stamp"
fi
