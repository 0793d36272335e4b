#!/usr/bin/env bash
# Installs energymon on a Raspberry Pi OS / Debian (bookworm or trixie) machine without Docker:
# InfluxDB 1.x and Grafana from apt, energymon in a virtualenv under /opt/energymon, the service
# user `energymon` (group dialout), /etc/energymon/energymon.env, data in /var/lib/energymon,
# systemd units for the collector and the replicator, Grafana provisioned with the dashboards.
# Safe to run again: it changes only what differs (that is also how you upgrade). docs/deploy.md.
#
#   sudo deploy/pi/install.sh                      # a real install
#   deploy/pi/install.sh --root DIR --skip-grafana-repo   # files only, under DIR (the tests)
#
# Options (or the environment variable in brackets; deliberately not ENERGYMON_*, which the
# energymon processes would refuse as unknown settings):
#   --root DIR            install the files under DIR instead of /, and skip what cannot run in
#                         a plain directory: apt, useradd/usermod, chown, starting services
#                         (units are still enabled, offline, with `systemctl --root`) [EM_INSTALL_ROOT]
#   --skip-grafana-repo   do not add Grafana's apt repository (offline; Grafana already
#                         installed, or installed another way)            [EM_SKIP_GRAFANA_REPO=1]
set -euo pipefail

SOURCE="$(cd "$(dirname "$0")/../.." && pwd)"
ROOT="${EM_INSTALL_ROOT:-}"
SKIP_GRAFANA_REPO="${EM_SKIP_GRAFANA_REPO:-0}"
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
        --root=*) ROOT="${1#--root=}"; shift ;;
        --skip-grafana-repo) SKIP_GRAFANA_REPO=1; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT="$(cd "$ROOT" && pwd)"
    [ "$ROOT" != / ] || ROOT=""
fi

APP=/opt/energymon
ETC=/etc/energymon
DATA=/var/lib/energymon
UNITS=/etc/systemd/system
GRAFANA_KEY_URL=https://apt.grafana.com/gpg-full.key
GRAFANA_KEYRING=/etc/apt/keyrings/grafana.asc
GRAFANA_LIST=/etc/apt/sources.list.d/grafana.list
# Waits for unattended-upgrades (busy on a freshly booted Pi) instead of failing at once.
APT=(apt-get -o DPkg::Lock::Timeout=600 -q -y)

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
real() { [ -z "$ROOT" ]; }

# Units whose files changed during this run, restarted at the end; CHANGED: the last
# install_file calls wrote something.
RESTART=()
CHANGED=0

# install_file SRC DEST MODE [OWNER:GROUP]: copies only when the content differs, then makes
# mode and owner what they must be (owner: not under --root, where the users do not exist).
install_file() {
    local src="$1" dest="$ROOT$2" mode="$3" owner="${4:-root:root}"
    mkdir -p "$(dirname "$dest")"
    if ! cmp -s "$src" "$dest"; then
        local tmp
        tmp="$(mktemp "$dest.XXXXXX")"
        cat "$src" >"$tmp"
        chmod "$mode" "$tmp"
        mv -f "$tmp" "$dest"
        say "wrote $2"
        CHANGED=1
    fi
    set_mode "$2" "$mode" "$owner"
}

# set_mode PATH MODE OWNER:GROUP, each only when it differs.
set_mode() {
    local path="$ROOT$1" mode="$2" owner="$3"
    [ "$(stat -c %a "$path")" = "${mode#0}" ] || chmod "$mode" "$path"
    if real && [ "$(stat -c %U:%G "$path")" != "$owner" ]; then chown "$owner" "$path"; fi
}

make_dir() {
    mkdir -p "$ROOT$1"
    set_mode "$1" "$2" "$3"
}

missing_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || printf '%s\n' "$pkg"
    done
}

step_packages() {
    real || { say "--root: apt skipped"; return 0; }
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
    # shellcheck disable=SC1091
    . /etc/os-release
    case "${VERSION_CODENAME:-}" in
        bookworm|trixie) ;;
        *) say "warning: tested on Debian bookworm and trixie, this is ${PRETTY_NAME:-unknown}" ;;
    esac
    local wanted=(python3 python3-venv ca-certificates curl)
    if ! command -v influxd >/dev/null 2>&1; then
        if ! apt-cache policy influxdb 2>/dev/null | grep -Eq 'Candidate: [^(]'; then
            die "apt has no 'influxdb' package on ${PRETTY_NAME:-this system} (Debian's is in bookworm, not in trixie): add InfluxData's apt repository as docs/deploy.md shows, then run this again"
        fi
        wanted+=(influxdb)
    fi
    local missing
    mapfile -t missing < <(missing_packages "${wanted[@]}")
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        "${APT[@]}" update
        DEBIAN_FRONTEND=noninteractive "${APT[@]}" install --no-install-recommends "${missing[@]}"
    fi
}

step_grafana_repo() {
    if [ "$SKIP_GRAFANA_REPO" = 1 ]; then
        say "Grafana's apt repository skipped (--skip-grafana-repo)"
        return 0
    fi
    # Grafana's documented APT setup: its key in /etc/apt/keyrings, the repository signed by it.
    curl -fsSL --retry 3 -o "$WORK/grafana.asc" "$GRAFANA_KEY_URL" \
        || die "cannot download $GRAFANA_KEY_URL (offline? --skip-grafana-repo)"
    install_file "$WORK/grafana.asc" "$GRAFANA_KEYRING" 0644
    printf 'deb [signed-by=%s] https://apt.grafana.com stable main\n' "$GRAFANA_KEYRING" >"$WORK/grafana.list"
    install_file "$WORK/grafana.list" "$GRAFANA_LIST" 0644
    if real && [ -n "$(missing_packages grafana)" ]; then
        say "installing grafana"
        "${APT[@]}" update
        DEBIAN_FRONTEND=noninteractive "${APT[@]}" install grafana
    fi
}

step_user() {
    real || { say "--root: service user skipped"; return 0; }
    getent group energymon >/dev/null || groupadd --system energymon
    if ! getent passwd energymon >/dev/null; then
        useradd --system --gid energymon --home-dir "$DATA" --no-create-home \
            --shell /usr/sbin/nologin energymon
        say "created user energymon"
    fi
    if ! id -nG energymon | tr ' ' '\n' | grep -qx dialout; then
        usermod -a -G dialout energymon
        say "added energymon to dialout"
    fi
}

# A digest of what pip would install: the same source is never installed twice.
source_digest() {
    (cd "$SOURCE" && find pyproject.toml README.md energymon collector replicator simulator energymon_grafana \
        harness energymon_cli -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
        | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

step_venv() {
    local venv="$ROOT$APP" digest
    digest="$(source_digest)"
    local version='import sys; print(sys.version_info[:2])'
    # A Debian release upgrade brings a new Python, under which the old venv no longer runs.
    if [ -x "$venv/bin/python" ] \
        && [ "$("$venv/bin/python" -c "$version" 2>/dev/null)" != "$(python3 -c "$version")" ]; then
        say "Python changed: making $APP again"
        rm -rf "$venv"
    fi
    [ -x "$venv/bin/python" ] || { say "creating $APP"; python3 -m venv "$venv"; }
    if [ "$(cat "$venv/energymon-source.sha256" 2>/dev/null)" != "$digest" ]; then
        say "installing energymon into $APP"
        # From a copy: a build in the checkout would leave build/ and *.egg-info behind.
        local copy="$WORK/src"
        mkdir -p "$copy"
        (cd "$SOURCE" && cp -r pyproject.toml README.md energymon collector replicator simulator energymon_grafana \
            harness energymon_cli "$copy/")
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$copy"
        printf '%s\n' "$digest" >"$venv/energymon-source.sha256"
        RESTART+=(energymon-collector.service energymon-replicator.service)
    fi
}

step_config() {
    make_dir "$ETC" 0750 root:energymon
    make_dir "$DATA" 0750 energymon:energymon
    if [ ! -e "$ROOT$ETC/energymon.env" ]; then
        install_file "$SOURCE/deploy/pi/energymon.env.template" "$ETC/energymon.env" 0640 root:energymon
    fi
    set_mode "$ETC/energymon.env" 0640 root:energymon
}

step_units() {
    local unit
    for unit in energymon-collector.service energymon-replicator.service; do
        CHANGED=0
        install_file "$SOURCE/deploy/pi/$unit" "$UNITS/$unit" 0644
        [ "$CHANGED" = 0 ] || RESTART+=("$unit")
    done
    # InfluxDB on this machine only (the collector and Grafana are local); no phoning home.
    cat >"$WORK/influxdb.conf" <<'EOF'
# Written by energymon's deploy/pi/install.sh.
[Service]
Environment=INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:8086
Environment=INFLUXDB_REPORTING_DISABLED=true
EOF
    CHANGED=0
    install_file "$WORK/influxdb.conf" "$UNITS/influxdb.service.d/energymon.conf" 0644
    [ "$CHANGED" = 0 ] || RESTART+=(influxdb.service)
    # Grafana's data source reads these (grafana/provisioning/datasources/energymon.yaml);
    # the admin password is the generated one, used when Grafana creates its admin on first start.
    cat >"$WORK/grafana.conf" <<'EOF'
# Written by energymon's deploy/pi/install.sh.
[Service]
Environment=GRAFANA_INFLUX_URL=http://127.0.0.1:8086
Environment=GRAFANA_INFLUX_DB=energymon
Environment=GRAFANA_INFLUX_USER=
Environment=GRAFANA_INFLUX_PASSWORD=
Environment=GF_SECURITY_ADMIN_PASSWORD=$__file{/etc/grafana/energymon-admin-password}
Environment=GF_ANALYTICS_REPORTING_ENABLED=false
Environment=GF_ANALYTICS_CHECK_FOR_UPDATES=false
Environment=GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES=false
Environment=GF_NEWS_NEWS_FEED_ENABLED=false
EOF
    CHANGED=0
    install_file "$WORK/grafana.conf" "$UNITS/grafana-server.service.d/energymon.conf" 0644
    [ "$CHANGED" = 0 ] || RESTART+=(grafana-server.service)
}

step_grafana() {
    local grafana_group=root:grafana kind
    real && ! getent group grafana >/dev/null && grafana_group=root:root
    CHANGED=0
    for kind in datasources dashboards alerting; do
        install_file "$SOURCE/grafana/provisioning/$kind/energymon.yaml" \
            "/etc/grafana/provisioning/$kind/energymon.yaml" 0640 "$grafana_group"
    done
    for kind in "$SOURCE"/grafana/dashboards/*.json; do
        install_file "$kind" "/var/lib/grafana/dashboards/$(basename "$kind")" 0644
    done
    [ "$CHANGED" = 0 ] || RESTART+=(grafana-server.service)
    if [ ! -e "$ROOT/etc/grafana/energymon-admin-password" ]; then
        python3 -c 'import secrets; print(secrets.token_urlsafe(18), end="")' >"$WORK/password"
        install_file "$WORK/password" /etc/grafana/energymon-admin-password 0640 "$grafana_group"
    fi
    set_mode /etc/grafana/energymon-admin-password 0640 "$grafana_group"
}

cloud_configured() {
    grep -Eq '^ENERGYMON_CLOUD_URL=.+' "$ROOT$ETC/energymon.env"
}

step_services() {
    local units=(energymon-collector.service)
    cloud_configured && units+=(energymon-replicator.service)
    if ! real; then
        # Offline: only the enablement symlinks, exactly as on a real system.
        systemctl --root="$ROOT" --quiet enable "${units[@]}"
        return 0
    fi
    systemctl daemon-reload
    if systemctl cat grafana-server.service >/dev/null 2>&1; then
        units=(grafana-server.service "${units[@]}")
    else
        say "warning: Grafana is not installed (--skip-grafana-repo?): no dashboards until it is"
    fi
    systemctl --quiet enable --now influxdb.service "${units[@]}"
    local unit
    for unit in $(printf '%s\n' "${RESTART[@]}" | sort -u); do
        if systemctl --quiet is-active "$unit"; then
            say "restarting $unit (changed)"
            systemctl restart "$unit"
        fi
    done
}

report() {
    local address
    address="$(hostname -I 2>/dev/null | awk '{print $1}')"
    address="${address:-<this Pi>}"
    echo
    echo "energymon is installed."
    echo "  Grafana:   http://$address:3000/d/energymon-home-energy  (user admin, password: sudo cat /etc/grafana/energymon-admin-password)"
    echo "  Collector: http://$address:8080/health   (the Arduinos post to $address:8080)"
    echo "  Settings:  $ETC/energymon.env  (then: sudo systemctl restart energymon-collector)"
    echo "  Logs:      journalctl -u energymon-collector -u energymon-replicator -f"
    if ! cloud_configured; then
        echo "  No cloud:  paste the lines of 'energymon cloud add-home NAME' into $ETC/energymon.env,"
        echo "             then: sudo systemctl enable --now energymon-replicator"
    fi
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
step_packages
step_grafana_repo
step_user
step_venv
step_config
step_units
step_grafana
step_services
report
