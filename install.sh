#!/bin/sh
# strict-groups node installer.
#
#   sudo ./install.sh [--host-root DIR] [--cri auto|containerd|crio]
#                     [--runtime PATH] [--handler NAME] [--no-restart]
#                     [--dry-run] [--uninstall] [--containerd-defaults FILE]
#                     [--containerd-version VERSION]
#
# Runs from a release directory (strict-groups-runtime, or the
# strict-groups-runtime-linux-<amd64|arm64> of npm run release, beside this
# script) or from a clone (dist/strict-groups-runtime, built first when it is
# missing or older than the sources, and npm is there). A node has no
# Node.js: everything beyond finding the binary is done by the binary itself,
# in "strict-groups-runtime strict-groups install", which "--help" describes.
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) arch=unknown ;;
esac

if [ -f "$here/strict-groups-runtime" ]; then
	binary=$here/strict-groups-runtime
elif [ -f "$here/strict-groups-runtime-linux-$arch" ]; then
	binary=$here/strict-groups-runtime-linux-$arch
elif [ -f "$here/package.json" ]; then
	binary=$here/dist/strict-groups-runtime
	# A clone installs what it holds: an old build after a pull would not.
	# Not the files builds write under src/ themselves (the generated
	# validators, the release's arm64 Node).
	if [ ! -f "$binary" ] || [ -n "$(find "$here/src" "$here/schemas" "$here/package.json" "$here/package-lock.json" \
		\( -path "$here/src/generated" -o -path "$here/src/build/node-linux-arm64/node_modules" \) -prune -o \
		-newer "$binary" -print 2>/dev/null | head -n 1)" ]; then
		command -v npm >/dev/null 2>&1 ||
			die "$binary is missing or older than the sources, and there is no npm to build it: run from a release directory, or install Node.js and npm"
		printf 'install.sh: building %s\n' "$binary" >&2
		# Build output goes to stderr: stdout is the installer's report.
		(
			cd "$here"
			[ -d node_modules ] || npm ci --no-audit --no-fund
			npm run build
		) >&2 || die "building $binary failed"
	fi
else
	die "no strict-groups-runtime beside $0 and no source tree to build it from"
fi

[ -x "$binary" ] || die "$binary is not executable"
exec "$binary" strict-groups install "$@"
