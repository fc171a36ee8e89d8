#!/usr/bin/env bash
# Installs the pinned Flink distribution from PyPI (apache-flink + apache-flink-libraries carry a
# complete bin/, lib/, conf/) into a cache directory, and compiles the project's example jobs
# against it. Idempotent: a second run only checks. Prints FLINK_HOME=... and EXAMPLE_JAR=...
set -euo pipefail

FLINK_VERSION=2.3.0
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${FLINK_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flink-operator}
venv="$cache/flink-$FLINK_VERSION"
log() { echo "flink-setup: $*" >&2; }

command -v java >/dev/null || { log "java not found: Flink needs a Java 17 runtime (apt-get install openjdk-17-jre-headless)"; exit 1; }
command -v javac >/dev/null || { log "javac not found: the example jobs need a JDK 17 (apt-get install openjdk-17-jdk-headless)"; exit 1; }

flink_home() { "$venv/bin/python" -c 'import os, pyflink; print(os.path.dirname(pyflink.__file__))' 2>/dev/null; }

home=$(flink_home || true)
if [ -z "$home" ] || [ ! -x "$home/bin/jobmanager.sh" ] || [ ! -f "$home/lib/flink-dist-$FLINK_VERSION.jar" ]; then
  log "installing Flink $FLINK_VERSION from PyPI into $venv (about 350 MB, once)"
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    "apache-flink==$FLINK_VERSION" "apache-flink-libraries==$FLINK_VERSION"
  home=$(flink_home)
  chmod +x "$home"/bin/*.sh "$home/bin/flink" 2>/dev/null || true
fi

# The example job, rebuilt when its source changes.
src="$repo/examples/jobs/stateful-counter/src/main/java"
out="$cache/jobs-$FLINK_VERSION"
jar="$out/stateful-counter.jar"
stamp=$(find "$src" -name '*.java' -exec sha256sum {} + | sort | sha256sum | cut -c1-16)
if [ ! -f "$jar" ] || [ "$(cat "$out/stateful-counter.stamp" 2>/dev/null)" != "$stamp" ]; then
  log "compiling the stateful-counter example job"
  rm -rf "$out/classes" && mkdir -p "$out/classes"
  javac --release 11 -nowarn -cp "$home/lib/*" -d "$out/classes" $(find "$src" -name '*.java')
  jar --create --file "$jar" --main-class org.flinkoperator.examples.StatefulCounterJob -C "$out/classes" .
  echo "$stamp" > "$out/stateful-counter.stamp"
fi

echo "FLINK_HOME=$home"
echo "EXAMPLE_JAR=$jar"
