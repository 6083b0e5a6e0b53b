#!/bin/sh
# Installs what a fresh Debian machine lacks, then builds and installs vosmedia (editable).
# Safe to run again: it skips what is already there.
set -e
export PIP_ROOT_USER_ACTION=ignore
cd "$(dirname "$0")/.."

DEBS="gcc python3-dev iproute2 sip-tester kamailio libbcg729-dev espeak-ng postgresql sipvicious chromium"
missing=""
for p in $DEBS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
    # The packaged Kamailio service is only a test peer here: keep it off port 5060.
    service kamailio stop >/dev/null 2>&1 || true
fi

# PostgreSQL for the store's tests (the switch itself defaults to SQLite): start the
# cluster, then create the test role and database if they are missing.
if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
    pg_createcluster "$(ls /usr/lib/postgresql | sort -n | tail -n 1)" main >/dev/null
fi
pg_lsclusters -h | while read -r version cluster port status rest; do
    case "$status" in
        online*) ;;
        *) pg_ctlcluster "$version" "$cluster" start ;;
    esac
done
tries=0
until pg_isready -q; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || { echo "setup.sh: PostgreSQL did not start" >&2; exit 1; }
    sleep 1
done
pg_sql() { (cd / && runuser -u postgres -- psql -X -q -tA -c "$1"); }
[ "$(pg_sql "SELECT 1 FROM pg_roles WHERE rolname = 'vosmedia'")" = 1 ] ||
    pg_sql "CREATE ROLE vosmedia LOGIN PASSWORD 'vosmedia'"
[ "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = 'vosmedia_test'")" = 1 ] ||
    pg_sql "CREATE DATABASE vosmedia_test OWNER vosmedia"

python -m pip install -q --disable-pip-version-check "Cython>=3.0" "setuptools>=65" wheel
python -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[test]"
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
