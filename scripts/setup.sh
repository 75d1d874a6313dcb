#!/usr/bin/env bash
# Create or update the two Python environments from the lock files.
# Idempotent: an environment whose lock file and interpreter have not changed is left alone (takes < 1 s).
#   .venv       Python 3.11: the clinic app (FastAPI, sentence-transformers, FAISS, spaCy, rasa-sdk) and tests
#   .venv-rasa  Python 3.10: the Rasa 3.6 server only (Rasa 3.6 does not run on 3.11)
set -euo pipefail
cd "$(dirname "$0")/.."

APP_VENV=${ASSISTANT_APP_VENV:-.venv}
RASA_VENV=${ASSISTANT_RASA_VENV:-.venv-rasa}

# Print the path of a working Python $1 (e.g. 3.10), looking wherever users usually have one.
find_python() {
  local want=$1 candidate
  local candidates=("${ASSISTANT_PYTHON:-}" "python$want")
  if command -v pyenv >/dev/null 2>&1; then
    candidates+=("$(pyenv root)"/versions/"$want"*/bin/python"$want")
  fi
  candidates+=("$HOME"/.pyenv/versions/"$want"*/bin/python"$want" /usr/local/bin/python"$want" /usr/bin/python"$want")
  if command -v uv >/dev/null 2>&1; then
    candidates+=("$(uv python find "$want" 2>/dev/null || true)")
  fi
  for candidate in "${candidates[@]}"; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$want'.split('.')))" >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# ensure_venv DIR PYTHON_VERSION LOCKFILE
ensure_venv() {
  local dir=$1 version=$2 lock=$3 python stamp
  if ! python=$(ASSISTANT_PYTHON="" find_python "$version"); then
    cat >&2 <<MSG
error: Python $version was not found, and the assistant needs it for $dir.
  Install it, for example:  pyenv install $version    (https://github.com/pyenv/pyenv)
                       or:  uv python install $version
                       or:  apt-get install python$version python$version-venv   (Debian/Ubuntu with it packaged)
  Then run this command again. With pyenv, the .python-version file in this folder selects it.
MSG
    exit 1
  fi
  stamp="$(sha256sum "$lock" | cut -c1-16)-$("$python" -c 'import sys; print(sys.version.split()[0])')"
  if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$stamp" ]; then
    return 0
  fi
  echo "Setting up $dir with $python (Python $version) from $lock ..."
  # Reuse an environment made with the same interpreter (pip brings it to the lock file); otherwise start afresh.
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$version'.split('.')))" 2>/dev/null; then
    "$python" -m venv --clear "$dir"
  fi
  # Some machines configure extra local package folders that pip warns about for every package: hide that noise.
  "$dir/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  "$dir/bin/python" -m pip install --quiet -r "$lock" 2> >(grep -v '^WARNING: Location' >&2)
  echo "$stamp" > "$dir/.installed"
}

# The browser tests drive Debian's chromium (never a downloaded browser) and inject axe-core from npm.
ensure_browser() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "error: the browser tests need Debian's ${missing[*]} (apt-get install ${missing[*]})" >&2
      exit 1
    fi
    echo "Installing ${missing[*]} from Debian for the browser tests ..."
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
      || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; }
  fi
  if [ ! -f node_modules/.installed ] || [ "$(cat node_modules/.installed)" != "$(sha256sum package-lock.json | cut -c1-16)" ]; then
    echo "Installing the browser-test tools from npm (axe-core) ..."
    npm ci --no-audit --no-fund --silent
    sha256sum package-lock.json | cut -c1-16 > node_modules/.installed
  fi
}

ensure_venv "$RASA_VENV" 3.10 requirements/rasa.lock
ensure_venv "$APP_VENV" 3.11 requirements/app.lock
if [ "${1:-}" = "--browser" ]; then
  ensure_browser
fi
