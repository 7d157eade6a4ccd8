#!/usr/bin/env bash
# The one entry point for setting refcr up from a fresh clone:
#
#   ./dev.sh demo [ARGS...]   set up, then dump and restore a demo counter process
#   ./dev.sh test [ARGS...]   set up, then run the whole suite: pytest -n auto --dist loadgroup tests zdtm ARGS...
#   ./dev.sh setup            set up only
#
# Setting up is idempotent and non-interactive: missing system packages are
# installed with apt-get, a .venv is created with python3 -m venv, refcr is
# installed into it in editable mode with its test extras (this builds the
# native module and compiles the protos), and the zdtm scenarios are built.
set -euo pipefail
cd "$(dirname "$0")"

section() { printf '\n=== %s ===\n' "$*"; }

# Debian packages: compilers and make (native module, zdtm), ip and ps (tests), nft (network lock).
APT_PACKAGES=(build-essential iproute2 procps nftables)
# iptables: tests/unit/net/test_netfilter.py makes legacy x_tables rules (refused by name).
APT_PACKAGES+=(iptables)
# The QEMU test guest for scenarios needing a device the host lacks (zdtm/harness/guest.py):
# the emulator and the static busybox of its initramfs.
APT_PACKAGES+=(qemu-system-x86 busybox-static)
# runc: tests/test_runc.py checkpoints and restores a busybox container through refcr swrk.
APT_PACKAGES+=(runc)
# The real programs of zdtm/apps/ and their clients (redis-cli, curl, psql, sqlite3, jcmd; javac
# builds the JVM's program).  Installing a service does not start it here (policy-rc.d); the
# scenarios run their own instances in their work dirs.
APT_PACKAGES+=(redis-server redis-tools nginx postgresql tmux nodejs openjdk-17-jdk-headless
               python3 sqlite3 curl util-linux)

setup_system() {
    section "system packages"
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    # python3 -m venv needs ensurepip (a pyenv python has it; Debian's needs python3-venv).
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    if ((${#missing[@]} == 0)); then
        echo "all present: ${APT_PACKAGES[*]}"
        return
    fi
    echo "installing: ${missing[*]}"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo -n)
    export DEBIAN_FRONTEND=noninteractive
    # another apt-get (a second checkout's setup, unattended-upgrades) holds
    # dpkg's lock for a while: wait for it instead of failing
    local wait=(-o DPkg::Lock::Timeout=600)
    "${sudo[@]}" apt-get "${wait[@]}" update -q
    "${sudo[@]}" apt-get "${wait[@]}" install -y -q --no-install-recommends "${missing[@]}"
}

setup_python() {
    section "python environment (.venv)"
    # (re)create it when missing or when the python it was made from is gone
    if ! .venv/bin/python -c '' 2>/dev/null; then
        rm -rf .venv
        python3 -m venv .venv
    fi
    # compat: a plain path in a .pth, as an installed package is found; the
    # default (strict) mode puts an import hook in every interpreter start,
    # which costs each refcr command ~30 ms of pathlib & co. (issue 18)
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' \
        --config-settings editable_mode=compat
    .venv/bin/python -c 'import refcr._native, refcr.pb' # fail here, not in the tests
    # refcr's bytecode written once, here: under PYTHONDONTWRITEBYTECODE (set on these
    # machines) every refcr command would compile its ~100 modules again (0.2 s of CPU)
    .venv/bin/python -m compileall -q -j0 refcr >/dev/null
    echo "refcr installed: $(.venv/bin/python -c 'import refcr; print(refcr.__file__)')"
}

setup_plugins() {
    section "plugins"
    make -s -C plugins
}

setup_zdtm() {
    if [[ -f zdtm/Makefile ]]; then
        section "zdtm scenarios"
        make -s -C zdtm -j"$(nproc)"
    fi
}

setup_guest() {
    section "test guest (only if a scenario needs a device this host lacks)"
    # fetches the Debian kernel package once (cached in /var/cache/refcr-guest)
    .venv/bin/python -m zdtm.harness.guest prepare
}

setup() {
    setup_system
    setup_python
    setup_plugins
    setup_zdtm
    setup_guest
}

cmd=${1:-}
(($#)) && shift
case "$cmd" in
setup)
    setup
    ;;
demo)
    setup
    section "demo: dump and restore a counter"
    exec .venv/bin/python -m refcr.demo "$@"
    ;;
test)
    setup
    section "tests: pytest -n auto --dist loadgroup tests zdtm $*"
    # Every pytest failure, including exit code 5 (no tests collected), fails this.
    exec .venv/bin/python -m pytest -n auto --dist loadgroup tests zdtm "$@"
    ;;
fuzz)
    # ./dev.sh fuzz N: a long campaign of N mutated images (tests/fuzz.py); counts every outcome
    # instead of stopping at the first problem, and reports them in fuzz-report.json
    n=${1:-2000}
    (($#)) && shift
    section "fuzz: $n mutated image directories"
    REFCR_FUZZ_CASES=$n REFCR_FUZZ_CAMPAIGN=fuzz-report.json \
        exec .venv/bin/python -m pytest -n 0 -p no:cacheprovider tests/test_fuzz_images.py -s "$@"
    ;;
*)
    echo "usage: $0 {demo|test|setup|fuzz N} [ARGS...]" >&2
    exit 2
    ;;
esac
