# Shared shell helpers for scripts/*.sh: installing the registry tools and
# running throw-away local registries. Sourced, not run.

# Installs Debian packages that are missing (when root), or says what to do.
ensure_packages() {
  local missing=()
  for pair in "$@"; do
    local bin=${pair%%:*} pkg=${pair##*:}
    command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} (Debian packages)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "missing: ${missing[*]}. Install them, e.g.: sudo apt-get install ${missing[*]}" >&2
    return 1
  fi
}

# The directory cargo builds into: CARGO_TARGET_DIR (relative or not), a
# .cargo/config setting, or ./target.
cargo_target_dir() {
  cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# start_registry DIR PORT: runs docker-registry on 127.0.0.1:PORT with its
# storage in DIR, in the background; waits until it listens.
start_registry() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: ocirepl-local
YAML
  docker-registry serve "$dir/config.yml" >"$dir/access.log" 2>"$dir/registry.log" &
  echo $! >"$dir/pid"
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "docker-registry did not start on port $port:" >&2
  tail -5 "$dir/registry.log" >&2
  return 1
}

stop_registry() {
  local dir=$1
  [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
}
