# PostgreSQL and Redis on 127.0.0.1 for the tests and the load tests: started if down,
# installed with apt-get on a fresh machine. Sourced by scripts/test and loadtests/run.

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    log "installing $*"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
    command -v pg_isready >/dev/null 2>&1 || apt_install postgresql postgresql-client
    if postgres_up; then return; fi
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fi
    local version
    version="$(ls /etc/postgresql | sort -V | tail -n1)"
    local hba="/etc/postgresql/${version}/main/pg_hba.conf"
    # The tests connect as postgres over TCP without a password, as on the machines here.
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
        as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    log "starting PostgreSQL ${version}"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do postgres_up && return; sleep 1; done
    log "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1
}

ensure_redis() {
    if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return; fi
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    log "starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return; sleep 0.5; done
    log "Redis did not come up on 127.0.0.1:6379"; exit 1
}
