#!/usr/bin/env bash
# Install the SEKMET test FHIR server into its own venv (it pins its own FastAPI/pydantic stack).
# Idempotent: does nothing when tests/ehr/.venv-ehr/bin/sekmet already exists.
set -euo pipefail

SEKMET_VERSION="0.1.1"  # pinned: young single-maintainer package, re-probe before upgrading
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-ehr"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/sekmet" ]; then
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "sekmet-fhir==$SEKMET_VERSION"
"$venv/bin/sekmet" --version
