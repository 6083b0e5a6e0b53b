#!/bin/sh
# Installs what a fresh Debian machine lacks, then builds and installs vosmedia (editable).
# Safe to run again: it skips what is already there.
set -e
export PIP_ROOT_USER_ACTION=ignore
cd "$(dirname "$0")/.."

DEBS="gcc python3-dev iproute2 sip-tester kamailio libbcg729-dev espeak-ng"
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

python -m pip install -q --disable-pip-version-check "Cython>=3.0" "setuptools>=65" wheel
python -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[test]"
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
