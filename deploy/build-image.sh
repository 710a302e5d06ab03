#!/usr/bin/env bash
# Builds the agentrace sidecar image (deploy/Containerfile) with podman.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
Usage: deploy/build-image.sh [--tag IMAGE] [--base IMAGE | --debian-base]

Builds the sidecar image from this checkout (build it first: scripts/setup.sh).

  --tag IMAGE     the image's name (default: localhost/agentrace-sidecar:dev)
  --base IMAGE    a base with Node.js 24 (default: docker.io/library/node:24-bookworm-slim)
  --debian-base   no registry needed: build the base from Debian bookworm packages with
                  mmdebstrap (glibc, libstdc++, libbpf1, libelf1, zlib1g, dash) plus the
                  official Node.js 24 binary (scripts/node24.sh), stripped but for the
                  libuv functions the sidecar hooks, and use it
                  (localhost/agentrace-base:bookworm-node24)
  -h, --help      this help

Environment: CONTAINERS_CONF and the rest of podman's own.
EOF
}

tag=localhost/agentrace-sidecar:dev
base=docker.io/library/node:24-bookworm-slim
debian_base=0
while (($#)); do
  case "$1" in
    --tag) tag=${2:?--tag needs an image name}; shift 2 ;;
    --base) base=${2:?--base needs an image}; shift 2 ;;
    --debian-base) debian_base=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-image.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

say() { printf '==> %s\n' "$*" >&2; }
# A rebuild replaces the image under its name: the previous one, now
# nameless, is removed unless a container still uses it.
replaced() { local old=$1 name=$2 new; new=$(podman image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)
  if [ -n "$old" ] && [ "$old" != "$new" ]; then podman rmi "$old" >/dev/null 2>&1 || true; fi; }
image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
need() { command -v "$1" >/dev/null || { echo "build-image.sh: $1 is not installed ($2)" >&2; exit 1; }; }
need podman "apt-get install podman runc"
for f in packages/sidecar/dist/cli.js packages/bpf/out/agentrace.bpf.o packages/bpf/build/Release/agentrace_bpf.node; do
  [ -f "$f" ] || { echo "build-image.sh: $f is not built; run scripts/setup.sh first" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ((debian_base)); then
  need mmdebstrap "apt-get install mmdebstrap"
  base=localhost/agentrace-base:bookworm-node24
  node24=$(scripts/node24.sh)
  say "building $base from Debian packages"
  mkdir -p "$work/node/usr/local/bin" "$work/node/etc"
  cp "$node24" "$work/node/usr/local/bin/node"
  # Stripped (-15 MB) but for the libuv functions the sidecar hooks in an
  # agent's node and the V8 symbols its frame reader needs: an agent may run
  # on this base too.
  keep=$(cd packages/bpf && node --input-type=module -e \
    "import { workSubmitFunction, workRunFunctions, v8LayoutSymbols } from './dist/index.js'; console.log([workSubmitFunction, ...workRunFunctions, ...v8LayoutSymbols].map((f) => '--keep-symbol=' + f).join(' '))")
  # shellcheck disable=SC2086
  strip --strip-all $keep "$work/node/usr/local/bin/node"
  # No base-files here: without it glibc would ask DNS before /etc/hosts.
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$work/node/etc/nsswitch.conf"
  # extract: only these packages, unpacked; no apt, no dpkg database, no
  # maintainer scripts. dash is there for the Containerfile's RUN.
  mmdebstrap --quiet --variant=extract \
    --include=libc6,libgcc-s1,libstdc++6,libbpf1,libelf1,zlib1g,dash \
    --dpkgopt='path-exclude=/usr/share/*' --dpkgopt='path-exclude=/usr/lib/*/gconv/*' \
    bookworm "$work/base.tar"
  tar --append -f "$work/base.tar" -C "$work/node" --owner=0 --group=0 ./usr/local/bin/node ./etc/nsswitch.conf
  old_base=$(image_id "$base")
  podman import --quiet \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'CMD ["node"]' \
    "$work/base.tar" "$base" >/dev/null
fi

# The app: the sidecar and the packages it uses, as npm installs them (no dev or optional peer
# dependencies, no install scripts: the addon is already built).
say "staging the sidecar and its production dependencies"
mkdir -p "$work/packs" "$work/app"
for p in protocol bpf sidecar; do
  (cd "packages/$p" && pnpm pack --pack-destination "$work/packs" >/dev/null)
done
echo '{"name":"agentrace-image","private":true}' > "$work/app/package.json"
(cd "$work/app" && npm install --omit=dev --omit=peer --ignore-scripts --no-audit --no-fund --loglevel=error "$work"/packs/*.tgz)
rm -f "$work/app/package-lock.json"

say "building $tag on $base"
old_image=$(image_id "$tag")
podman build --quiet --build-arg "BASE=$base" -f deploy/Containerfile -t "$tag" "$work/app" >/dev/null
replaced "$old_image" "$tag"
if ((debian_base)); then replaced "$old_base" "$base"; fi
size=$(podman image inspect --format '{{.Size}}' "$tag")
say "built $tag ($((size / 1000000)) MB)"
