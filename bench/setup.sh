#!/bin/sh
# Creates bench/.venv with the pinned Ansible and pyinfra the benchmark was
# written against. Idempotent: an existing venv with these versions is kept.
set -eu
cd "$(dirname "$0")"
ANSIBLE_CORE=2.19.14
PYINFRA=3.10.0
if [ -x .venv/bin/python ] &&
    .venv/bin/python -c "import importlib.metadata as m; assert m.version('ansible-core') == '$ANSIBLE_CORE' and m.version('pyinfra') == '$PYINFRA'" 2>/dev/null; then
    echo "bench/.venv: ansible-core $ANSIBLE_CORE and pyinfra $PYINFRA already installed"
    exit 0
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet "ansible-core==$ANSIBLE_CORE" "pyinfra==$PYINFRA"
echo "bench/.venv: installed ansible-core $ANSIBLE_CORE and pyinfra $PYINFRA"
