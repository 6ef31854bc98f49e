#!/usr/bin/env bash
# Install what the test suite needs beyond Python packages: a JDK and Maven (the
# real Kafka broker), kcat (a foreign Kafka client), Node.js (the AsyncAPI
# validator), promtool and chromium as later stages need them. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v kcat >/dev/null || command -v kafkacat >/dev/null || need+=(kcat)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)

if ((${#need[@]})); then
  echo "installing Debian packages: ${need[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The reference AsyncAPI parser, pinned by package-lock.json; install scripts are not run.
lock=tools/asyncapi/package-lock.json
stamp=tools/asyncapi/node_modules/.installed-lock
if [ ! -f "$stamp" ] || ! cmp -s "$lock" "$stamp"; then
  (cd tools/asyncapi && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp "$lock" "$stamp"
fi
