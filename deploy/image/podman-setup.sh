#!/usr/bin/env bash
# Installs podman and what the image build needs (Debian packages), and configures podman for this kind of
# host: rootful (we are root); runc, since crun refuses a cgroup-hybrid (v1) host ("crun: cgroups in hybrid
# mode not supported, drop all controllers from cgroupv2"); explicit ulimits, since podman's default nofile
# (1048576) is above the host's hard limit ("error setting rlimit type 7: operation not permitted") and an
# nproc of 65536 or the host's hard limit fails likewise ("rlimit type 6") where 4096 works. Storage: podman's
# default overlay driver works here. Idempotent; `make image` runs it.
set -euo pipefail

packages=(podman runc mmdebstrap uidmap fuse-overlayfs slirp4netns containernetworking-plugins ca-certificates)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "podman-setup: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "podman-setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Our own drop-in only: the machine's containers.conf is left as it is.
if [ "$(id -u)" = 0 ]; then
    nofile=$(ulimit -Hn)
    if [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ]; then nofile=65536; fi
    conf=/etc/containers/containers.conf.d/llmagg.conf
    mkdir -p "$(dirname "$conf")"
    cat > "$conf.new" <<CONF
# Written by llm-aggregator's deploy/image/podman-setup.sh.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
    mv "$conf.new" "$conf"
fi
