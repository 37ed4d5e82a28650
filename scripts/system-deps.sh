#!/usr/bin/env bash
# Debian packages the test suite needs beyond Python: a headless Chromium with its WebDriver (the
# dashboard's browser test) and a Prometheus server (the scrape test). Idempotent and quiet when
# everything is present: apt is touched only for what is missing. Java and Maven (the Kafka broker)
# are listed too so a fresh Debian machine gets everything `make test` uses.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }

have java || need+=(default-jre-headless)
have mvn || need+=(maven)
have chromium || need+=(chromium)
have chromedriver || need+=(chromium-driver)
have prometheus || need+=(prometheus)

if [ "${#need[@]}" -eq 0 ]; then
    exit 0
fi

if ! have apt-get; then
    echo "system-deps: missing ${need[*]} and no apt-get here; install them with your package manager" >&2
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if have sudo; then sudo="sudo"; else
        echo "system-deps: missing ${need[*]}; run as root (or install sudo) to install them" >&2
        exit 0
    fi
fi

echo "system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# --no-install-recommends keeps chromium from pulling a desktop; prometheus's own service is not started
# by us (the tests run the binary on a free port).
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
