#!/bin/sh
# enter-root.sh ROOT [--bind DIR]... [--no-cgroup2] -- PROGRAM [ARG]...
#
# Runs PROGRAM with ROOT (a Debian tree whose glibc the host lacks) as its
# root directory, the way a node that ships those binaries would run them.
# Call it inside a private mount namespace (`unshare -m --propagation
# private`): every mount here stays there, and ROOT is never written to.
#
#   - the new root is an overlay over ROOT with a throw-away upper layer, so
#     mount points can be made in it and it is a mount point itself (runc
#     needs that, and pivot_root does);
#   - /proc, /sys, /dev, /tmp, /run and each --bind DIR are bound in at the
#     same paths, so bundles, logs and process files keep their names;
#   - --no-cgroup2 unmounts /sys/fs/cgroup/unified, which crun refuses on this
#     hybrid cgroup host;
#   - pivot_root, then the old root is detached: nothing of the host's tree
#     is left but what was bound in.
#
# Only exec follows the setup: PROGRAM keeps this process's pid, argv,
# environment (PATH as the caller set it, or unset), stdio, every inherited
# descriptor and signal disposition; its exit status and signals are the
# caller's to see directly.
set -eu

caller_path_set=${PATH+1}
caller_path=${PATH-}
PATH=/usr/sbin:/usr/bin:/sbin:/bin

root=$1
shift
binds='/proc /sys /dev /tmp /run'
no_cgroup2=
while [ "$#" -gt 0 ]; do
	case $1 in
	--bind) binds="$binds $2"; shift 2 ;;
	--no-cgroup2) no_cgroup2=1; shift ;;
	--) shift; break ;;
	*) echo "enter-root.sh: unknown option $1" >&2; exit 125 ;;
	esac
done

# ROOT's own empty /mnt holds the overlay's layers; the overlay reads ROOT's
# directories, not what is mounted on them here.
stage=$root/mnt
mount -t tmpfs -o mode=0755 enter-root-stage "$stage"
mkdir "$stage/upper" "$stage/work" "$stage/root"
mount -t overlay -o "lowerdir=$root,upperdir=$stage/upper,workdir=$stage/work" enter-root "$stage/root"
new=$stage/root
for dir in $binds; do
	mkdir -p "$new$dir"
	mount --rbind "$dir" "$new$dir"
done
if [ -n "$no_cgroup2" ] && [ -d "$new/sys/fs/cgroup/unified" ]; then
	umount "$new/sys/fs/cgroup/unified" 2>/dev/null || true
fi

cd "$new"
pivot_root . mnt
cd /
# The host's busybox is static: it runs whatever the new root's libraries.
/mnt/bin/busybox umount -l /mnt

if [ -n "$caller_path_set" ]; then PATH=$caller_path; else unset PATH; fi
exec "$@"
