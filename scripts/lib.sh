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

# Prints a free TCP port on 127.0.0.1, below the kernel's ephemeral range
# (32768 and up by default), so that an outgoing connection of a running
# benchmark cannot take it before the registry binds it.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# start_registry DIR PORT [TLS_DIR [DATA_DIR]]: runs docker-registry on
# 127.0.0.1:PORT with its storage in DIR (or DATA_DIR), in the background;
# waits until it listens. With TLS_DIR it serves https with
# TLS_DIR/leaf.crt and TLS_DIR/leaf.key (and so offers HTTP/2).
start_registry() {
  local dir=$1 port=$2 tls=${3:-} data=${4:-$1/data}
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: ocirepl-local
YAML
  if [ -n "$tls" ]; then
    printf '  tls:\n    certificate: %s\n    key: %s\n' "$tls/leaf.crt" "$tls/leaf.key" >>"$dir/config.yml"
  fi
  # NOTIFY_URL (and NOTIFY_TOKEN): send push notifications there.
  if [ -n "${NOTIFY_URL:-}" ]; then
    printf 'notifications:\n  endpoints:\n    - name: ocirepl\n      url: %s\n      headers: {Authorization: ["Bearer %s"]}\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n      ignore: {mediatypes: [application/octet-stream], actions: [pull]}\n' \
      "$NOTIFY_URL" "${NOTIFY_TOKEN:-}" >>"$dir/config.yml"
  fi
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

# make_pki DIR: a private CA (DIR/ca.crt, the file a cert dir holds) and a
# leaf for 127.0.0.1 and localhost signed by it (DIR/leaf.crt, leaf.key).
make_pki() {
  local d=$1
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ocirepl-bench-ca \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
    -keyout "$d/leaf.key" -out "$d/leaf.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$d/ext"
  openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext" -out "$d/leaf.crt" 2>/dev/null
}
