#!/bin/busybox sh
# The entrypoint of the strict-groups image, as the DaemonSets run it
# (deploy/daemonset.yaml, deploy/cleanup.yaml):
#
#   /strict-groups/entrypoint install|uninstall [options]
#
# with the host's / mounted at $STRICT_GROUPS_HOST_ROOT. The image holds a
# static busybox (this shell) and strict-groups-runtime, which needs a C
# library: the host's, the one containerd will run it on. So the binary runs
# inside the host root (chroot): with the host's glibc, the host's systemctl
# and the host's view of every path. A host whose C library cannot run it
# stops here, before anything is changed.
#
# Which file runs: the installed /usr/local/bin/strict-groups-runtime when it
# is this image's binary (every start after the first); otherwise a copy
# staged at /var/lib/strict-groups/daemonset/, which the daemon removes once
# it has installed the same binary (src/install/daemon.ts). A second start
# writes nothing.
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
installed=/usr/local/bin/strict-groups-runtime
stage=/var/lib/strict-groups/daemonset
staged=$stage/strict-groups-runtime

# Whether no directory of the host path $1 is a symlink. Paths under $host
# are resolved here, in the container, where an absolute symlink on the host
# would lead out of $host; only a path free of them is used from here.
direct() {
	d=$host
	for part in $(echo "${1#/}" | tr / ' '); do
		d=$d/$part
		[ -L "$d" ] && return 1
	done
	return 0
}

if direct "$(dirname "$installed")" && cmp -s "$binary" "$host$installed"; then
	run=$installed
	# A copy left by a start that failed after staging.
	if direct "$stage" && [ -f "$host$staged" ]; then rm -f "$host$staged"; fi
else
	direct "$staged" || die "a directory of $staged is a symlink on the host; refusing to stage the binary through it"
	mkdir -p -m 0755 "$host$stage"
	# Replaced atomically: a binary another pod still runs stays intact.
	if ! cmp -s "$binary" "$host$staged"; then
		rm -f "$host$stage/.strict-groups-runtime.new"
		cp "$binary" "$host$stage/.strict-groups-runtime.new"
		chmod 0755 "$host$stage/.strict-groups-runtime.new"
		mv -f "$host$stage/.strict-groups-runtime.new" "$host$staged"
		say "staged $staged"
	fi
	run=$staged
fi

# Whether the host's C library runs it, asked before it acts.
if ! version=$(chroot "$host" "$run" strict-groups version 2>&1); then
	[ "$run" = "$staged" ] && rm -f "$host$staged"
	die "this host cannot run strict-groups-runtime (a Node.js 24 executable: glibc 2.28 or later, x86-64 or arm64), so containerd could not either; nothing was changed. It said: $version"
fi
say "$version; running $run inside the host root"

# The host's usual PATH, for the host's programs it runs (systemctl, containerd).
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin exec /bin/busybox chroot "$host" "$run" strict-groups daemonset "$@"
