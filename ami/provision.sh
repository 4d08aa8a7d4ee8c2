#!/usr/bin/env bash
# Makes a Debian or Ubuntu server a berth machine with the chosen roles; used by the Packer
# build and by hand. Safe to run again: it only changes what differs from what it would make.
#
#   provision.sh --roles registry,hoster,proxy,balancer [options]
#
#   --roles LIST           any of registry, hoster, proxy, balancer (comma-separated)
#   --tarball PATH         berth's `npm pack` tarball to install (needed the first time)
#   --redis-url URL        Redis of the platform; without it, the registry role runs its own
#                          (berth-redis, append-only file) and the URL points there
#   --redis-password PW    password of that own Redis (made up once when not given)
#   --redis-bind ADDRS     addresses that own Redis listens on (default 127.0.0.1; other
#                          machines of a cluster need a reachable one)
#   --token T              API token (BERTH_TOKEN); the registry role makes one up when none is set
#   --acme-key HEX         key sealing certificates' private keys in Redis (64 hex characters,
#                          written to /etc/berth/acme-key for BERTH_ACME_KEY_FILE): the same on
#                          every registry and balancer machine; the registry role makes one up
#                          when none is set
#   --env KEY=VALUE        any other berth setting for /etc/berth/berth.env (repeatable)
#   --no-start             enable the units but do not start them now
#   --image                for a machine image: install everything the roles need, but write no
#                          settings and enable nothing; each machine made from the image runs
#                          berth-provision (this script, installed) with its settings at first boot
set -euo pipefail

say() { printf 'provision: %s\n' "$*"; }
die() { printf 'provision: %s\n' "$*" >&2; exit 1; }

PREFIX=/opt/berth
ETC=/etc/berth
DATA=/var/lib/berth
UNIT_DIR=/etc/systemd/system
# Where the units are: beside this script, also when it runs as the berth-provision link.
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)

roles=''
tarball=''
redis_url=''
redis_password=''
redis_bind='127.0.0.1'
token=''
acme_key=''
start=1
image=0
extra_env=()
while [ $# -gt 0 ]; do
  case "$1" in
    --roles) roles=${2:?--roles needs a list}; shift 2 ;;
    --tarball) tarball=${2:?--tarball needs a path}; shift 2 ;;
    --redis-url) redis_url=${2:?--redis-url needs a URL}; shift 2 ;;
    --redis-password) redis_password=${2:?--redis-password needs a value}; shift 2 ;;
    --redis-bind) redis_bind=${2:?--redis-bind needs addresses}; shift 2 ;;
    --token) token=${2:?--token needs a value}; shift 2 ;;
    --acme-key) acme_key=${2:?--acme-key needs 64 hex characters}; shift 2 ;;
    --env)
      case "${2:-}" in
        [A-Z_]*=*) extra_env+=("$2") ;;
        *) die "--env takes KEY=VALUE (got: ${2:-nothing})" ;;
      esac
      shift 2 ;;
    --no-start) start=0; shift ;;
    --image) image=1; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

[ -n "$roles" ] || die "say which roles this machine has: --roles registry,hoster,proxy,balancer"
has_role() { case ",$roles," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for role in ${roles//,/ }; do
  case "$role" in
    registry | hoster | proxy | balancer) ;;
    *) die "unknown role: $role (roles: registry, hoster, proxy, balancer)" ;;
  esac
done
# They end up inside redis.conf's quotes and a redis:// URL: only characters safe in both.
safe_secret='^[A-Za-z0-9._~-]+$'
[[ -z "$redis_password" || "$redis_password" =~ $safe_secret ]] || die "--redis-password may hold only letters, digits and . _ ~ - (e.g. openssl rand -hex 24)"
[[ -z "$token" || "$token" =~ $safe_secret ]] || die "--token may hold only letters, digits and . _ ~ - (e.g. openssl rand -hex 24)"
[[ -z "$acme_key" || "$acme_key" =~ ^[0-9a-fA-F]{64}$ ]] || die "--acme-key must be 64 hex characters (e.g. openssl rand -hex 32)"
[ "$(id -u)" -eq 0 ] || die "run it as root (sudo $0 …)"
command -v apt-get >/dev/null 2>&1 || die "this script knows Debian and Ubuntu (apt-get) only"
if [ -n "$tarball" ]; then
  [ -f "$tarball" ] || die "no tarball at $tarball: make it with npm pack in a berth checkout"
  tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
fi
own_redis=0
if has_role registry && [ -z "$redis_url" ]; then own_redis=1; fi
# Say what is missing before installing anything.
env_file=$ETC/berth.env
# Registries seal certificates' keys with it, balancers open them: only those roles hold it.
acme_key_file=$ETC/acme-key
needs_acme_key=0
if has_role registry || has_role balancer; then needs_acme_key=1; fi
current() { if [ -f "$env_file" ]; then sed -n "s/^$1=//p" "$env_file" | tail -n 1; fi; }
if [ "$image" -eq 0 ]; then
  if [ "$own_redis" -eq 0 ] && [ -z "$redis_url" ] && [ -z "$(current REDIS_URL)" ]; then
    die "this machine has no registry role: give the platform's Redis with --redis-url"
  fi
  if ! has_role registry && [ -z "$token" ] && [ -z "$(current BERTH_TOKEN)" ]; then
    die "give the platform's API token with --token (the registry machine's $env_file has it)"
  fi
  if [ "$needs_acme_key" -eq 1 ] && ! has_role registry && [ -z "$acme_key" ] && [ ! -s "$acme_key_file" ]; then
    die "give the platform's certificate key with --acme-key (the registry machine's $acme_key_file has it): every balancer and registry needs the same one"
  fi
fi
# This script and the units come in the tarball (ami/): run from there, it is berth-provision.
installed_ami=$PREFIX/lib/node_modules/berth/ami

# --- packages -------------------------------------------------------------------------------
apt_updated=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  say "installing $* (apt)"
  # The package lists may be missing or old: fetch them once, then try again.
  if ! apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
    [ "$apt_updated" -eq 0 ] || die "apt-get could not install $*"
    apt-get update -qq
    apt_updated=1
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(node_major)" -lt 20 ]; then
  candidate=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *\([0-9]*\).*/\1/p')
  if [ -z "$candidate" ] || [ "$candidate" = "0" ]; then
    apt-get update -qq
    apt_updated=1
    candidate=$(apt-cache policy nodejs | sed -n 's/^ *Candidate: *\([0-9]*\).*/\1/p')
  fi
  [ "${candidate:-0}" -ge 20 ] 2>/dev/null ||
    die "Node.js 20.18.1 or newer is needed and this release's archive has ${candidate:-no} nodejs: install Node.js 20.18.1 or newer (e.g. from NodeSource), or use Debian 13, then run this again"
  apt_install nodejs
fi
# undici (the proxy's and balancer's upstream client) needs 20.18.1, not just any Node 20.
node -e 'const [a, b, c] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && (b > 18 || (b === 18 && c >= 1))) ? 0 : 1)' ||
  die "Node.js 20.18.1 or newer is needed (found $(node --version)): install a newer one (e.g. from NodeSource), then run this again"
# The hoster builds apps with npm; installing berth needs it too.
command -v npm >/dev/null 2>&1 || apt_install npm
command -v prlimit >/dev/null 2>&1 || apt_install util-linux
# Runs die with their hoster through setpriv --pdeathsig (util-linux too).
command -v setpriv >/dev/null 2>&1 || apt_install util-linux
# node-pty (interactive runs' terminals) is a native addon: installing berth builds it with node-gyp.
for tool in python3 make g++; do
  command -v "$tool" >/dev/null 2>&1 || { apt_install python3 make g++; break; }
done
# The hoster keeps apps off each other's ports with an nftables rule.
[ -x /usr/sbin/nft ] || command -v nft >/dev/null 2>&1 || apt_install nftables
# The registry serves `git push` deploys with git's own receive-pack.
command -v git >/dev/null 2>&1 || apt_install git
# The proxy's haproxy engine (BERTH_PROXY_ENGINE=haproxy) runs Debian's haproxy under berth:
# Debian's own haproxy service (port 80, /etc/haproxy) stays off.
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  apt_install haproxy
fi
if [ -d /run/systemd/system ]; then systemctl stop haproxy.service 2>/dev/null || true; fi
systemctl mask haproxy.service >/dev/null 2>&1 || true
if [ "$own_redis" -eq 1 ] && ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
fi
# Add-ons: each hoster runs redis-server and Debian's PostgreSQL programs itself, one server
# per add-on; the packages' own services (6379, 5432) stay off unless this machine runs them.
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
fi
if [ "$own_redis" -eq 0 ]; then
  # Disabled (not masked: a later run with the registry role enables it), stopped if running.
  if [ -d /run/systemd/system ]; then systemctl stop redis-server.service 2>/dev/null || true; fi
  systemctl disable redis-server.service >/dev/null 2>&1 || true
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_install postgresql
  if [ -d /run/systemd/system ]; then systemctl disable --now postgresql.service >/dev/null 2>&1 || true; fi
  systemctl mask postgresql.service >/dev/null 2>&1 || true
fi

changed=0
# --- berth ----------------------------------------------------------------------------------
installed_sum=$(cat "$PREFIX/.tarball.sha256" 2>/dev/null || true)
if [ -n "$tarball" ]; then
  sum=$(sha256sum "$tarball" | cut -d' ' -f1)
  if [ "$sum" != "$installed_sum" ]; then
    say "installing berth from $tarball into $PREFIX"
    mkdir -p "$PREFIX"
    npm install --global --prefix "$PREFIX" --omit=dev --no-audit --no-fund --loglevel=error "$tarball"
    echo "$sum" >"$PREFIX/.tarball.sha256"
    changed=1
  fi
elif [ -z "$installed_sum" ]; then
  die "berth is not installed yet: give --tarball (npm pack in a berth checkout makes it)"
fi
ln -sfn "$PREFIX/bin/berth" /usr/local/bin/berth
if [ -x "$installed_ami/provision.sh" ]; then
  ln -sfn "$installed_ami/provision.sh" /usr/local/sbin/berth-provision
fi
say "berth $(/usr/local/bin/berth --version)"

# --- users and directories ------------------------------------------------------------------
nologin=$(command -v nologin || echo /usr/sbin/nologin)
if ! id -u berth >/dev/null 2>&1; then
  say "creating the system user berth (the daemons run as it; the hoster runs as root)"
  useradd --system --user-group --home-dir "$DATA" --no-create-home --shell "$nologin" berth
fi

# --- /proc: apps see only their own processes -----------------------------------------------
# hidepid=2 hides other users' processes (pids, command lines, environments); group berth (the
# proxy's CPU sampler, which names the busiest instance) still sees all of them.
proc_opts="hidepid=2,gid=$(getent group berth | cut -d: -f3)"
if ! grep -qE '^[^#]*[[:space:]]/proc[[:space:]]' /etc/fstab 2>/dev/null; then
  say "mounting /proc with $proc_opts from the next boot (/etc/fstab)"
  echo "proc /proc proc defaults,$proc_opts 0 0" >>/etc/fstab
elif ! grep -qE '^[^#]*[[:space:]]/proc[[:space:]].*hidepid' /etc/fstab; then
  say "/etc/fstab mounts /proc without hidepid: add $proc_opts to its options to hide processes from other users"
fi
# On a running machine (not an image build or a chroot), now too.
if [ -d /run/systemd/system ] && ! grep -qE '^proc /proc proc [^ ]*hidepid' /proc/mounts; then
  mount -o "remount,$proc_opts" /proc || say "could not remount /proc with $proc_opts: it applies from the next boot"
fi

# put MODE OWNER:GROUP SOURCE TARGET: installs SOURCE as TARGET when it differs, and notes it.
put() {
  if ! cmp -s "$3" "$4"; then
    install -m "$1" -o "${2%:*}" -g "${2#*:}" "$3" "$4"
    changed=1
  fi
  chmod "$1" "$4"
  chown "$2" "$4"
}

# dir MODE OWNER:GROUP PATH
dir() { install -d -m "$1" -o "${2%:*}" -g "${2#*:}" "$3"; }
# Readable by all, like /etc: berth-redis (user redis) reads its config there. The settings
# themselves are 0640.
dir 0755 root:root "$ETC"
# The app user must traverse to its instance's home and bundle, and list nothing else.
dir 0711 root:root "$DATA"
has_role hoster && dir 0711 root:root "$DATA/hoster"
has_role balancer && dir 0700 berth:berth "$DATA/tls"
# The git remotes' bare repositories (a cache of what was pushed: any registry takes any push).
has_role registry && dir 0700 berth:berth "$DATA/git"
# Add-on backups (BERTH_ADDON_BACKUP_DIR): the registry takes and keeps them; not in the unit's private /tmp, wiped at each restart.
has_role registry && dir 0700 berth:berth "$DATA/addon-backups"
if [ "$own_redis" -eq 1 ]; then
  dir 0750 redis:redis "$DATA/redis"
fi

install_units() {
  for unit in "$@"; do
    put 0644 root:root "$here/systemd/$unit" "$UNIT_DIR/$unit"
  done
}
units=()
[ "$own_redis" -eq 1 ] && units+=(berth-redis.service)
for role in registry hoster proxy balancer; do
  has_role "$role" && units+=("berth-$role.service")
done
mask_debian_redis() {
  # Debian's own redis-server would take the same port: berth-redis replaces it.
  if [ -d /run/systemd/system ]; then systemctl stop redis-server.service 2>/dev/null || true; fi
  systemctl mask redis-server.service >/dev/null 2>&1 || true
}

if [ "$image" -eq 1 ]; then
  install_units "${units[@]}"
  [ "$own_redis" -eq 0 ] || mask_debian_redis
  if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
  say "image ready for roles $roles: no settings written, nothing enabled (run berth-provision with the machine's settings at first boot)"
  exit 0
fi

# --- settings -------------------------------------------------------------------------------
secret() { head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='; }

if [ "$own_redis" -eq 1 ]; then
  redis_conf=$ETC/redis.conf
  if [ -z "$redis_password" ]; then
    redis_password=$(sed -n 's/^requirepass "\(.*\)"$/\1/p' "$redis_conf" 2>/dev/null || true)
  fi
  [ -n "$redis_password" ] || redis_password=$(secret)
  new_conf=$(mktemp)
  cat >"$new_conf" <<CONF
# Written by ami/provision.sh: berth's Redis (berth-redis.service). Run provision.sh to change it.
bind ${redis_bind//,/ }
port 6379
protected-mode yes
requirepass "$redis_password"
dir $DATA/redis
appendonly yes
appendfsync everysec
# berth's leases and records must never be evicted: refuse writes instead.
maxmemory-policy noeviction
supervised systemd
daemonize no
logfile ""
CONF
  put 0640 root:redis "$new_conf" "$redis_conf"
  rm -f "$new_conf"
  first_bind=${redis_bind%%,*}
  case "$first_bind" in 0.0.0.0 | '*' | '::') first_bind=127.0.0.1 ;; esac
  redis_url="redis://:$redis_password@$first_bind:6379"
fi

[ -n "$redis_url" ] || redis_url=$(current REDIS_URL)
[ -n "$redis_url" ] || die "this machine has no registry role: give the platform's Redis with --redis-url"
[ -n "$token" ] || token=$(current BERTH_TOKEN)
if [ -z "$token" ]; then
  has_role registry || die "give the platform's API token with --token (the registry machine's $env_file has it)"
  token=$(secret)
fi

if [ "$needs_acme_key" -eq 1 ]; then
  [ -n "$acme_key" ] || acme_key=$(tr -d '[:space:]' <"$acme_key_file" 2>/dev/null || true)
  if [ -z "$acme_key" ]; then
    has_role registry || die "give the platform's certificate key with --acme-key (the registry machine's $acme_key_file has it): every balancer and registry needs the same one"
    acme_key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  fi
  new_key=$(mktemp)
  echo "$acme_key" >"$new_key"
  # Read by the daemons (user berth) only; someone reading Redis alone gets no private key.
  put 0640 root:berth "$new_key" "$acme_key_file"
  rm -f "$new_key"
fi

# This machine's first address, as the other machines of its network reach it.
address=$(hostname -I 2>/dev/null | awk '{ print $1 }')
address=${address:-127.0.0.1}
# is_set KEY: an earlier run, an admin or this run's --env sets KEY.
is_set() {
  grep -q "^$1=" "$env_file" 2>/dev/null && return 0
  for kv in ${extra_env[@]+"${extra_env[@]}"}; do [ "${kv%%=*}" = "$1" ] && return 0; done
  return 1
}
new_env=$(mktemp)
{
  echo "# Written by ami/provision.sh: the berth daemons' settings (see docs/configuration.md)."
  echo "REDIS_URL=$redis_url"
  echo "BERTH_TOKEN=$token"
  # The balancer checks a token by its digest before showing internal reports (/_berth/*, /metrics).
  echo "BERTH_TOKEN_SHA256=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
  echo "BERTH_DATA_DIR=$DATA"
  # Keep what an earlier run or an admin set, except what this run sets.
  if [ -f "$env_file" ]; then
    { grep -E '^[A-Z_][A-Z0-9_]*=' "$env_file" || true; } | { grep -vE '^(REDIS_URL|BERTH_TOKEN|BERTH_TOKEN_SHA256|BERTH_DATA_DIR)=' || true; } |
      while IFS= read -r line; do
        key=${line%%=*}
        overridden=0
        for kv in ${extra_env[@]+"${extra_env[@]}"}; do
          if [ "${kv%%=*}" = "$key" ]; then overridden=1; fi
        done
        [ "$overridden" -eq 1 ] || echo "$line"
      done
  fi
  if [ "$needs_acme_key" -eq 1 ] && ! is_set BERTH_ACME_KEY_FILE; then
    echo "BERTH_ACME_KEY_FILE=$acme_key_file"
  fi
  # Kept across restarts (the unit's /tmp is private and wiped), so a push sends only what is new.
  if has_role registry && ! is_set BERTH_GIT_DIR; then
    echo "BERTH_GIT_DIR=$DATA/git"
  fi
  if has_role registry && ! is_set BERTH_ADDON_BACKUP_DIR; then
    echo "BERTH_ADDON_BACKUP_DIR=$DATA/addon-backups"
  fi
  # Other machines' proxies and the balancer reach this machine's proxy through this URL.
  if has_role proxy && ! is_set BERTH_PROXY_URL; then
    echo "BERTH_PROXY_URL=http://$address:8080"
  fi
  # The balancer here reaches the proxy here through that address: believe its X-Forwarded-*.
  if has_role proxy && has_role balancer && ! is_set BERTH_TRUSTED_PROXIES; then
    echo "BERTH_TRUSTED_PROXIES=127.0.0.1,::1,::ffff:127.0.0.1,$address"
  fi
  # Last, so that a run with the same --env writes the same file.
  for kv in ${extra_env[@]+"${extra_env[@]}"}; do echo "$kv"; done
} >"$new_env"
put 0640 root:berth "$new_env" "$env_file"
rm -f "$new_env"

# --- systemd --------------------------------------------------------------------------------
install_units "${units[@]}"

systemd_running=0
[ -d /run/systemd/system ] && systemd_running=1
[ "$own_redis" -eq 0 ] || mask_debian_redis
if [ "$systemd_running" -eq 1 ]; then
  systemctl daemon-reload
  systemctl enable "${units[@]}"
  if [ "$start" -eq 1 ] && [ "$changed" -eq 1 ]; then
    # A changed unit, setting or berth takes effect only on a restart.
    systemctl restart "${units[@]}"
    say "(re)started: ${units[*]}"
  elif [ "$start" -eq 1 ]; then
    systemctl start "${units[@]}"
    say "nothing changed; running: ${units[*]}"
  fi
else
  # In an image build or a chroot, enabling only makes the links; the units start at boot.
  systemctl enable "${units[@]}"
  say "systemd is not running here: enabled ${units[*]}, they start at the next boot"
fi
say "done: roles $roles"
