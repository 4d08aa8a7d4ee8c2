#!/usr/bin/env bash
# Throwaway Debian roots for testing ami/provision.sh for real, without touching this machine.
#   throwaway-root.sh build CACHE_DIR          once: CACHE_DIR/base, Debian 13 (minbase + systemd)
#                                              by debootstrap, with the .debs provision.sh installs
#                                              already downloaded; CACHE_DIR/node, a layer over it
#                                              with Node.js and npm installed
#   throwaway-root.sh run LOWER UPPER CMD…     run CMD chrooted in LOWER (a root, or layers
#                                              top:…:bottom) seen through an overlay whose changes
#                                              go to UPPER, in a mount namespace of its own: the
#                                              cache stays as built
# Needs root, debootstrap, and Debian's mirror (apt's registry) for the build.
set -euo pipefail

suite=trixie
mirror=${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}

build() {
  local cache=$1 partial="$1.partial"
  if [ -f "$cache/.complete" ]; then return 0; fi
  rm -rf "$partial"
  mkdir -p "$partial/base"
  debootstrap --variant=minbase --include=systemd,ca-certificates "$suite" "$partial/base" "$mirror" >"$partial/debootstrap.log" 2>&1 || {
    echo "throwaway-root: debootstrap failed (log: $partial/debootstrap.log)" >&2
    tail -n 20 "$partial/debootstrap.log" >&2
    exit 1
  }
  # A throwaway root needs no fsync per file: dpkg runs several times faster without.
  echo force-unsafe-io >"$partial/base/etc/dpkg/dpkg.cfg.d/throwaway-unsafe-io"
  # Trust what this machine trusts (a network that re-signs TLS has its CA there), as a server
  # of this network would.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$partial/base/usr/local/share/ca-certificates/"
    in_root "$partial/base" "" update-ca-certificates >/dev/null 2>&1
  fi
  # Fetch now what provision.sh will install, so that each test run installs it without the network.
  in_root "$partial/base" "" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only --no-install-recommends nodejs npm redis-server >/dev/null'
  in_root "$partial/base" "$partial/node-upper" sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null 2>&1'
  mv "$partial/node-upper/data" "$partial/node"
  rm -rf "$partial/node-upper"
  touch "$partial/.complete"
  rm -rf "$cache"
  mv "$partial" "$cache"
}

# in_root ROOT UPPER CMD…: with UPPER empty, ROOT itself is changed (used while building).
in_root() {
  local root=$1 upper=$2
  shift 2
  # shellcheck disable=SC2016 # expanded by the inner shell, inside the new namespace
  local script='
    set -e
    root=$1 upper=$2; shift 2
    target=$root
    if [ -n "$upper" ]; then
      mkdir -p "$upper/data" "$upper/work" "$upper/merged"
      mount -t overlay overlay -o "lowerdir=$root,upperdir=$upper/data,workdir=$upper/work" "$upper/merged"
      target=$upper/merged
    fi
    mount -t proc proc "$target/proc"
    mount --rbind /dev "$target/dev"
    mount -t tmpfs tmpfs "$target/run"
    mount -t tmpfs tmpfs "$target/tmp"
    cp /etc/resolv.conf "$target/etc/resolv.conf" 2>/dev/null || true
    exec chroot "$target" /usr/bin/env -i NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
  '
  unshare --mount --propagation private --fork -- /bin/sh -c "$script" in-root "$root" "$upper" "$@"
}

case "${1:-}" in
  build) build "$2" ;;
  run) shift; in_root "$@" ;;
  *) echo "usage: $0 build CACHE_DIR | run CACHE_DIR UPPER CMD..." >&2; exit 2 ;;
esac
