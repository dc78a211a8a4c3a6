#!/usr/bin/env bash
# Installs what Outrider needs on a fresh Debian machine, idempotently: Java ≥ 17, PostgreSQL, Maven (Debian),
# uv (PyPI), the Kafka broker jars (Maven Central, cached in .cache/kafka/libs), and the uv workspace with the
# Rust extension; with --test also helm, built from source, for the chart tests (`make test`; `make up` needs no Go).
# Safe to run again: each step is skipped when already done.
set -euo pipefail
for_tests=false
[ "${1:-}" = "--test" ] && for_tests=true
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

packages=()
java_major=$( (java -version 2>&1 || true) | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "${java_major:-0}" -ge 17 ] || packages+=(openjdk-17-jre-headless)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || packages+=(postgresql-15)
command -v mvn >/dev/null || packages+=(maven)
command -v promtool >/dev/null || packages+=(prometheus)  # promtool checks the alert rules
command -v runuser >/dev/null || packages+=(util-linux)
if [ ${#packages[@]} -gt 0 ]; then
  say "apt-get install ${packages[*]}"
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "Rust (cargo ≥ 1.83) is required to build native/logparse; install it with rustup." >&2
  exit 1
fi

if ! command -v uv >/dev/null; then
  say "pip install uv"
  python3 -m pip install --quiet --disable-pip-version-check "uv>=0.8" || {
    echo "pip could not install uv (Debian's own python3 refuses: PEP 668); install it with pipx, or" \
      "python3 -m pip install --user --break-system-packages uv, and put ~/.local/bin on PATH" >&2
    exit 1
  }
fi

if ! ls .cache/kafka/libs/kafka_2.13-*.jar .cache/kafka/libs/kafka-tools-[0-9]*.jar >/dev/null 2>&1; then
  say "Kafka jars from Maven Central -> .cache/kafka/libs"
  mvn -q -B -f tools/kafka/pom.xml dependency:copy-dependencies -Dkafka.libs="$PWD/.cache/kafka/libs"
fi

if $for_tests && [ ! -x .cache/bin/helm ]; then
  # No release downloads here: helm is built from the Go module proxy (a few minutes, once).
  command -v go >/dev/null || { echo "Go (>= 1.22) is required to build helm for the chart tests." >&2; exit 1; }
  say "go install helm -> .cache/bin/helm"
  GOBIN="$PWD/.cache/bin" go install helm.sh/helm/v3/cmd/helm@v3.16.4
fi

say "uv sync (workspace + Rust extension)"
uv sync --locked --quiet
