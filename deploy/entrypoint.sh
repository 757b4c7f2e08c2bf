#!/bin/busybox sh
# The entrypoint of the strict-groups image, as the DaemonSets run it
# (deploy/daemonset.yaml, deploy/cleanup.yaml):
#
#   /strict-groups/entrypoint install|uninstall [options]
#
# with the host's / mounted at $STRICT_GROUPS_HOST_ROOT. The image holds a
# static busybox (this shell) and strict-groups-runtime, which needs a C
# library: the host's, the one containerd will run it on. So the binary is
# staged on the host and run inside the host root (chroot): with the host's
# glibc, the host's systemctl and the host's view of every path. A host whose
# C library cannot run it stops here, before anything else is changed.
#
# exec all the way: the binary becomes the container's PID 1 and gets the
# SIGTERM of a rollout or a drain itself.
set -eu
PATH=/bin

say() { printf 'strict-groups entrypoint: %s\n' "$*"; }
die() {
	printf 'strict-groups entrypoint: %s\n' "$*" >&2
	exit 1
}

case ${1:-} in
install | uninstall) ;;
*) die "usage: $0 install|uninstall [options] (the host's / mounted at \$STRICT_GROUPS_HOST_ROOT)" ;;
esac
host=${STRICT_GROUPS_HOST_ROOT:-}
[ -n "$host" ] || die "STRICT_GROUPS_HOST_ROOT is not set (the deploy/ manifests set it to the mount path of the host's /)"
[ -d "$host/etc" ] || die "$host is not the host's / (no $host/etc): is the hostPath volume mounted there?"

binary=/strict-groups/strict-groups-runtime
# The host path the binary is staged at, and run from.
stage=/var/lib/strict-groups/daemonset

# Each directory on the way is created or checked here, in the container,
# where an absolute symlink on the host would lead out of $host: none may be
# a symlink.
dir=$host
for part in var lib strict-groups daemonset; do
	dir=$dir/$part
	[ -L "$dir" ] && die "$stage: ${dir#"$host"} is a symlink on the host; refusing to stage the binary through it"
	[ -d "$dir" ] || mkdir -m 0755 "$dir"
done

# Replaced atomically and only when it differs: a second start writes
# nothing, and a binary another pod still runs stays intact.
if ! cmp -s "$binary" "$dir/strict-groups-runtime"; then
	rm -f "$dir/.strict-groups-runtime.new"
	cp "$binary" "$dir/.strict-groups-runtime.new"
	chmod 0755 "$dir/.strict-groups-runtime.new"
	mv -f "$dir/.strict-groups-runtime.new" "$dir/strict-groups-runtime"
	say "staged $stage/strict-groups-runtime"
fi

# Whether the host's C library runs it, asked before it acts.
if ! version=$(chroot "$host" "$stage/strict-groups-runtime" strict-groups version 2>&1); then
	die "this host cannot run strict-groups-runtime (a Node.js 24 executable: glibc 2.28 or later, x86-64 or arm64), so containerd could not either; nothing was changed. It said: $version"
fi
say "$version; running it inside the host root"

# The host's usual PATH, for the host's programs it runs (systemctl, containerd).
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin exec /bin/busybox chroot "$host" "$stage/strict-groups-runtime" strict-groups daemonset "$@"
