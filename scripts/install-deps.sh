#!/usr/bin/env bash
# Install the system packages cairn's tests and demos use, only when they are missing:
# Node.js and npm (the Helia peer and the JavaScript CAR libraries used by interop tests),
# iproute2 and util-linux (loopback-only network namespaces for kubo), python3 and pip (the
# kubo peer and the interop driver) and Prometheus's Python client (its parser checks /debug/metrics), curl (the gateway tests), wrk (the gateway benchmark) and chromium (the gateway's
# browser test), dnsmasq, nftables and miniupnpd (test networks with DNS, NAT and UPnP in
# namespaces).
set -euo pipefail
need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v curl >/dev/null 2>&1 || need+=(curl)
# The metrics test checks the Prometheus endpoint with the official client's OpenMetrics parser.
/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || need+=(python3-prometheus-client)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# Reachability tests: a DNS server for /dnsaddr/ inside test namespaces (the binary only:
# dnsmasq-base starts no service), nftables for the NATs.
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
command -v nft >/dev/null 2>&1 || need+=(nftables)
# A UPnP IGD router for the port-mapping test (run in the foreground inside a test namespace;
# the package starts no service).
command -v miniupnpd >/dev/null 2>&1 || need+=(miniupnpd-nftables)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${need[*]}; run as root or install them (apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
