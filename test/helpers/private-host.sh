#!/bin/sh
# private-host.sh STATE CONFIG [--no-cgroup2] -- PROGRAM [ARG]...
#
# Runs PROGRAM (podman, for the conmon suite) with a private view of this
# host. Call it inside a private mount namespace (`unshare -m --propagation
# private`); every mount here stays there:
#
#   - /etc, /var/lib and /run are overlays whose writes go to a throw-away
#     tmpfs layer: podman's blob cache in /var/lib/containers and whatever
#     else it writes there leave no trace on the host;
#   - /etc/strict-groups/config.json is CONFIG, at the shim's default path:
#     conmon gives the runtime an environment of its own, without the
#     caller's STRICT_GROUPS_CONFIG, so a node's shim reads that file;
#   - /run/runc and /run/crun (the runtimes' default state roots) and
#     /dev/shm (podman's locks) are directories under STATE, the same for
#     every call of a suite: conmon, podman's cleanup process (which calls
#     the runtime without podman's --runtime-flag words) and later calls all
#     see the same containers;
#   - --no-cgroup2 unmounts /sys/fs/cgroup/unified, which crun refuses on
#     this hybrid cgroup host.
set -eu

state=$1 config=$2
shift 2
no_cgroup2=
while [ "$#" -gt 0 ]; do
	case $1 in
	--no-cgroup2) no_cgroup2=1; shift ;;
	--) shift; break ;;
	*) echo "private-host.sh: unknown option $1" >&2; exit 125 ;;
	esac
done

stage=$state/stage
mount -t tmpfs -o mode=0700 private-host-stage "$stage"
for dir in /etc /var/lib /run; do
	layer=$stage/$(echo "$dir" | tr / _)
	mkdir "$layer" "$layer/upper" "$layer/work"
	mount -t overlay -o "lowerdir=$dir,upperdir=$layer/upper,workdir=$layer/work" private-host "$dir"
done

mkdir -p /etc/strict-groups
cp "$config" /etc/strict-groups/config.json

for dir in /run/runc /run/crun /dev/shm; do
	shared=$state/$(basename "$dir")
	mkdir -p "$shared" "$dir"
	mount --bind "$shared" "$dir"
done

if [ -n "$no_cgroup2" ]; then
	umount /sys/fs/cgroup/unified 2>/dev/null || true
fi

exec "$@"
