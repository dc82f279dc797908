# Shared set-up for scripts/demo, scripts/test and bench/run; source it, do not run it.
#
# Needs only Python 3.11+ and the package registries: makes .venv at the repository
# root when it is missing and installs dicomhub into it with pip (editable).
# Installs Debian packages with apt-get, as root or through sudo.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

say() {
    printf '%s: %s\n' "$(basename "$0")" "$*" >&2
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        say "needs root (or sudo) for: $*"
        return 1
    fi
}

apt_install() {
    say "installing Debian packages: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "$@"
}

find_python() {
    local candidate
    for candidate in python3.14 python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            command -v "$candidate"
            return 0
        fi
    done
    say "needs Python 3.11 or newer; found: $(python3 --version 2>&1 || echo none)"
    return 1
}

make_venv() {
    local python version
    python="$(find_python)"
    say "creating $VENV with $("$python" --version)"
    if ! "$python" -m venv "$VENV" >/dev/null 2>&1; then
        # Debian ships venv's ensurepip in a separate package, python3.X-venv.
        rm -rf "$VENV"
        version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        apt_install "python${version}-venv"
        "$python" -m venv "$VENV"
    fi
}

# ensure_venv [EXTRAS]: .venv with dicomhub installed, e.g. ensure_venv "[test]".
ensure_venv() {
    local extras="${1:-}"
    if [ -x "$VENV/bin/python" ] &&
        ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        say "$VENV has Python older than 3.11; remove it and run again"
        return 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        make_venv
    fi
    say "installing dicomhub${extras} into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --editable "$ROOT$extras"
}
