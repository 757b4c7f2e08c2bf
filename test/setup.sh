#!/usr/bin/env bash
# Everything the suites need on a fresh Debian 12 machine, as root:
#
#   - Debian 12's own packages (apt-get install): runc 1.1.5, crun 1.8.1,
#     containerd 1.6.20, podman 4.3.1 with conmon 2.1.6, and the tools the
#     suites drive them with;
#   - under .cache/runtimes/, through a private apt configuration
#     (src/build/debian-packages.sh; the host's own apt sources are never
#     changed): containerd 1.7 (trixie) and 2.x (sid), unpacked, as they run
#     on Debian 12's glibc; Debian 12's arm64 C library, on which
#     qemu-aarch64-static runs the release's arm64 binary; Debian 12's
#     prometheus-node-exporter, unpacked (not installed, which would start
#     it), whose textfile collector reads the report's metrics;
#   - a sid root holding runc, crun and busybox-static (mmdebstrap), whose
#     newer glibc the host lacks, for the suites that enter it.
#
# Idempotent: what is already there is kept. STRICT_GROUPS_RUNTIMES moves the
# cache elsewhere. Called by test/run-all.sh; safe to call alone.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "test/setup.sh: run as root (it installs packages)" >&2
	exit 1
fi

cache=${STRICT_GROUPS_RUNTIMES:-$PWD/.cache/runtimes}
mkdir -p "$cache"
export DEBIAN_FRONTEND=noninteractive

# Debian 12's packages: the list, with why each, is test/debian-packages.
apt-get update
# shellcheck disable=SC2046 # one package a word
apt-get install -y --no-install-recommends $(grep -v -e '^#' -e '^$' test/debian-packages)

# The host's own Debian mirror: the newer suites come from the same place as
# everything else on the machine.
mirror=$(src/build/debian-mirror.sh)

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
host_arch=$(dpkg --print-architecture)
fetch=src/build/debian-packages.sh

# containerd from trixie (1.7) and sid (2.x), each unpacked into its own
# directory: containerd-<suite>/usr/bin holds containerd, ctr and its own
# containerd-shim-runc-v2.
fetch_containerd() {
	local dest=$cache/containerd-$1
	[ -x "$dest/usr/bin/containerd" ] && return 0
	rm -rf "$dest" "$dest.versions"
	"$fetch" "$cache/apt" "$1" "$host_arch" "$dest" containerd
}

# A sid root for runc and crun builds that need a newer glibc than Debian 12's.
# mmdebstrap, as root, mounts /proc, /sys and /dev/pts inside the tree while
# it works: in a private mount namespace, so that a run cut short leaves no
# mount on the host, and the tree of an earlier such run can be removed.
build_sid_root() {
	local dest=$cache/sid-root
	[ -x "$dest/usr/sbin/runc" ] && [ -x "$dest/usr/bin/crun" ] && return 0
	rm -rf --one-file-system "$dest.partial"
	unshare --mount --propagation private \
		mmdebstrap --quiet --variant=apt --include=runc,crun,busybox-static \
		--aptopt='Acquire::Check-Valid-Until "false"' --keyring="$keyring" \
		sid "$dest.partial" "deb $mirror sid main" >"$cache/sid-root.log" 2>&1 ||
		{ cat "$cache/sid-root.log" >&2; return 1; }
	mv "$dest.partial" "$dest"
}

# node-exporter, the consumer of `strict-groups report --format prometheus`:
# Debian 12's package, unpacked rather than installed (that would start it).
fetch_node_exporter() {
	local dest=$cache/node-exporter
	[ -x "$dest/usr/bin/prometheus-node-exporter" ] && return 0
	rm -rf "$dest" "$dest.versions"
	"$fetch" "$cache/apt" bookworm "$host_arch" "$dest" prometheus-node-exporter
}

# Debian 12's arm64 C library, the userland qemu-aarch64-static runs the
# release's arm64 binary on (test/release).
fetch_arm64_sysroot() {
	local dest=$cache/arm64-sysroot
	[ -e "$dest/lib/ld-linux-aarch64.so.1" ] && return 0
	rm -rf "$dest" "$dest.versions"
	"$fetch" "$cache/apt" bookworm arm64 "$dest" libc6 libstdc++6 libgcc-s1
}

# The sid root takes longest; the downloads go on meanwhile.
build_sid_root &
sid_root=$!
# If a download fails and set -e ends the script, the sid root's build ends too.
trap 'kill "$sid_root" 2>/dev/null || true' EXIT
fetch_containerd trixie
fetch_containerd sid
fetch_node_exporter
fetch_arm64_sysroot
wait "$sid_root"
trap - EXIT

echo "test/setup.sh: ready in $cache:"
for suite in trixie sid; do
	printf '  containerd-%s: %s\n' "$suite" "$("$cache/containerd-$suite/usr/bin/containerd" --version)"
done
printf '  node-exporter: %s\n' "$("$cache/node-exporter/usr/bin/prometheus-node-exporter" --version 2>&1 | head -n 1)"
printf '  arm64-sysroot: %s\n' "$(paste -sd ' ' "$cache/arm64-sysroot.versions")"
printf '  sid-root: %s, %s\n' \
	"$(chroot "$cache/sid-root" runc --version | head -n 1)" \
	"$(chroot "$cache/sid-root" dpkg-query -W -f '${Package} ${Version}' crun)"
