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
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
                2>/dev/null; then
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

    # The install is editable, so only a change of pyproject.toml (pins, entry
    # points, package data) or new extras need pip again; an install with
    # extras also serves a run that asks for none.
    local stamp="$VENV/.dicomhub-install" project installed=""
    project="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ -f "$stamp" ]; then
        installed="$(cat "$stamp")"
    fi
    if [ "$installed" = "$project $extras" ] ||
        { [ -z "$extras" ] && [ "${installed%% *}" = "$project" ]; }; then
        return 0
    fi
    say "installing dicomhub${extras} into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --editable "$ROOT$extras"
    printf '%s' "$project $extras" >"$stamp"
}

# npm_package PACKAGE VERSION CACHE FILE: the npm package PACKAGE@VERSION
# unpacked into CACHE/VERSION/, taken from the npm registry with `npm pack` (npm
# checks its integrity against the registry's record); none of its dependencies
# are installed and nothing is built, so only packages that ship a prebuilt FILE
# (a path inside the package) are used this way. Skipped when that version is
# already there; other versions in CACHE are removed.
npm_package() {
    local package="$1" version="$2" cache="$3" file="$4"
    local dest="$cache/$version" work
    if [ -f "$dest/$file" ] &&
        grep -q "\"version\": \"$version\"" "$dest/package.json" 2>/dev/null; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        apt_install npm
    fi

    say "installing $package $version (npm) into $dest"
    mkdir -p "$cache"
    work="$(mktemp -d "$cache/.install.XXXXXX")"
    if ! (cd "$work" && npm pack --silent "$package@$version" >tarball-name); then
        rm -rf "$work"
        say "npm pack $package@$version failed (messages above)"
        return 1
    fi
    mkdir "$work/unpacked"
    tar -xzf "$work/$(tail -n 1 "$work/tarball-name")" -C "$work/unpacked"
    if [ ! -f "$work/unpacked/package/$file" ]; then
        rm -rf "$work"
        say "$package@$version has no $file; cannot use it"
        return 1
    fi

    # Only a complete unpack is moved into place: an interrupted install leaves
    # a .install.* folder, removed here next time, and never a half package.
    find "$cache" -mindepth 1 -maxdepth 1 ! -name "$(basename "$work")" \
        -exec rm -rf {} +
    mv "$work/unpacked/package" "$dest"
    rm -rf "$work"
}

# ensure_ohif: OHIF Viewer's prebuilt dist/ (npm package @ohif/app, about 50 MB to
# download, 210 MB unpacked) in .cache/ohif/VERSION/, the version named in
# demo/ohif/VERSION, for scripts/demo and the browser tests.
OHIF_CACHE="$ROOT/.cache/ohif"

ensure_ohif() {
    npm_package @ohif/app "$(tr -d '[:space:]' <"$ROOT/demo/ohif/VERSION")" \
        "$OHIF_CACHE" dist/index.html
}

# ensure_dicomweb_client: the JavaScript dicomweb-client that OHIF uses (0.5 MB),
# at the version named in tests/js/dicomweb-client.VERSION, in
# .cache/dicomweb-client/VERSION/ for tests/test_dicomweb_client_js.py, which
# loads its prebuilt UMD file build/dicomweb-client.js in Chromium.
DICOMWEB_CLIENT_CACHE="$ROOT/.cache/dicomweb-client"

ensure_dicomweb_client() {
    npm_package dicomweb-client \
        "$(tr -d '[:space:]' <"$ROOT/tests/js/dicomweb-client.VERSION")" \
        "$DICOMWEB_CLIENT_CACHE" build/dicomweb-client.js
}
