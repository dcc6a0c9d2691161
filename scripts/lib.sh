# Shared helpers for scripts/quickstart and scripts/test (sourced, not run).

# Installs Debian packages that provide the given commands, when missing.
# Usage: need_cmds openssl:openssl curl:curl
need_cmds() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing ${missing[*]} and no apt-get to install them; install them and retry" >&2
    return 1
  fi
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing ${missing[*]} (apt-get)…" >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

need_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install a stable Rust toolchain (https://rustup.rs) and retry" >&2
    return 1
  fi
}
