#!/usr/bin/env bash
# The `altdata` image, assembled with buildah from files on this machine.
#
#   bash scripts/image.sh build   # -> image localhost/altdata:local in .stack/containers (vfs)
#   bash scripts/image.sh check   # build, then run `altdata --version` in it as uid 10001
#
# Why not `docker build .`: the root Dockerfile starts FROM node, rust and gcr.io's
# distroless images, and no image registry is reachable from the development machines (only
# Debian's, PyPI's, npm's and crates.io's package registries are). So this script makes the
# same runtime image `FROM scratch`: the binary, the shared libraries it links (from the
# host, found with ldd: glibc, libgcc_s, libm and the loader, as in distroless/cc), CA
# certificates, the provider profiles and, when built, the dashboard (web/dist), with the
# Dockerfile's user (10001), environment, ports and entrypoint. Release images still come
# from the Dockerfile, built where the base images are reachable (k8s/README.md).
#
# Tools: buildah and runc from Debian (installed with apt-get if missing), storage driver
# vfs under .stack/containers (no overlay mount, no daemon, nothing outside the repo). The
# container runs under runc; crun 1.8 (Debian's) refuses this machine's hybrid cgroups
# ("cgroups in hybrid mode not supported"), so it is not used.
#
# Environment: ALTDATA_BIN (default target/release/altdata, else target/debug/altdata).
# Used by scripts/k8s-validate.sh. Exit status 3 means "cannot run here" (no apt-get to
# install buildah, or no binary): the caller reports it as a skip.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
IMAGE=localhost/altdata:local
STORE="$ROOT/.stack/containers"

log()  { printf '[image] %s\n' "$*" >&2; }
die()  { printf '[image] ERROR: %s\n' "$*" >&2; exit 1; }
skip() { printf '[image] SKIPPED: %s\n' "$*" >&2; exit 3; }
have() { command -v "$1" >/dev/null 2>&1; }

ensure_tools() {
  have buildah && have runc && return 0
  have apt-get || skip "buildah and runc are not installed and there is no apt-get to install them"
  [ "$(id -u)" = 0 ] || skip "buildah and runc are not installed (apt-get install buildah runc, as root)"
  log "apt-get install buildah runc"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends buildah runc >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends buildah runc >/dev/null; } \
    || die "apt-get install buildah runc failed"
}

bh() { buildah --root "$STORE/storage" --runroot "$STORE/run" --storage-driver vfs "$@"; }

# The working container of this run; removed on exit, whatever happens (a vfs layer is a
# full copy of the files).
WORKING=""
trap '[ -z "$WORKING" ] || bh rm "$WORKING" >/dev/null 2>&1 || true' EXIT

binary() {
  local bin
  for bin in "${ALTDATA_BIN:-}" target/release/altdata target/debug/altdata; do
    [ -n "$bin" ] && [ -x "$bin" ] && { echo "$bin"; return 0; }
  done
  skip "no altdata binary (cargo build --bin altdata, or set ALTDATA_BIN)"
}

cmd_build() {
  ensure_tools
  local bin ctr lib
  bin="$(binary)"
  mkdir -p "$STORE"
  ctr="$(bh from --name altdata-build-$$ scratch)"
  WORKING="$ctr"
  bh copy --quiet "$ctr" "$bin" /usr/local/bin/altdata
  # The shared libraries the binary links, at the paths the loader looks for them.
  for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u); do
    bh copy --quiet "$ctr" "$(readlink -f "$lib")" "$lib"
  done
  [ -e /etc/ssl/certs/ca-certificates.crt ] && bh copy --quiet "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
  # Names for the uid the manifests pin (runAsUser: 10001).
  local etc; etc="$(mktemp -d)"
  printf 'root:x:0:0:root:/root:/sbin/nologin\naltdata:x:10001:10001:altdata:/nonexistent:/sbin/nologin\n' >"$etc/passwd"
  printf 'root:x:0:\naltdata:x:10001:\n' >"$etc/group"
  bh copy --quiet "$ctr" "$etc/passwd" /etc/passwd
  bh copy --quiet "$ctr" "$etc/group" /etc/group
  rm -rf "$etc"
  bh copy --quiet "$ctr" profiles/ /usr/local/share/altdata/profiles/
  if [ -d web/dist ]; then
    bh copy --quiet "$ctr" web/dist/ /usr/local/share/altdata/web/
  else
    log "web/dist not built (make web): the image has no dashboard"
  fi
  bh config \
    --user 10001:10001 \
    --workingdir /usr/local/share/altdata \
    --env ALTDATA_PROFILES_DIR=/usr/local/share/altdata/profiles \
    --env ALTDATA_WEB_DIR=/usr/local/share/altdata/web \
    --env ALTDATA_LOG_FORMAT=json \
    --port 8080 --port 9090 \
    --entrypoint '["/usr/local/bin/altdata"]' \
    --cmd '--help' \
    --label org.opencontainers.image.title=altdata \
    "$ctr"
  # Replace the previous local image rather than keep every build (vfs stores full copies).
  bh rmi --force "$IMAGE" >/dev/null 2>&1 || true
  bh commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
  WORKING=""
  log "built $IMAGE from $bin ($(bh images --format '{{.Size}}' "$IMAGE" | head -n1))"
}

cmd_check() {
  cmd_build
  local ctr version
  ctr="$(bh from --name altdata-check-$$ "$IMAGE")"
  WORKING="$ctr"
  # The image's own user and entrypoint; runc as the OCI runtime (see the header).
  version="$(bh run --runtime "$(command -v runc)" "$ctr" -- /usr/local/bin/altdata --version)" \
    || die "altdata --version failed in $IMAGE"
  log "ran \`altdata --version\` in $IMAGE (user $(bh inspect --format '{{.OCIv1.Config.User}}' "$ctr")): $version"
}

case "${1:-}" in
  build) cmd_build ;;
  check) cmd_check ;;
  *) echo "usage: $0 build|check" >&2; exit 2 ;;
esac
