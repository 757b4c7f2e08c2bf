#!/usr/bin/env bash
# Debian packages of one suite and architecture, downloaded and unpacked into
# one directory, through a private apt configuration: its own sources, lists,
# cache and an empty dpkg status under CACHE, so the host's apt state is
# neither read for packages nor written, its sources are never changed, and no
# foreign architecture is added to the host. The mirror is the one the host's
# apt configuration names. A suite's Release file may be past its
# Valid-Until on a frozen mirror (sid's is, on these machines): not checked.
#
#   src/build/debian-packages.sh CACHE SUITE ARCH DEST PACKAGE...
#
# Unpacks every PACKAGE (no dependencies are followed) into DEST, which must
# not exist yet, and writes DEST.versions ("package version" lines, sorted).
# Works as root or not. Used by npm run release (busybox-static for the
# image) and test/setup.sh (containerd from trixie and sid, node-exporter,
# the arm64 C library qemu-aarch64-static runs the arm64 binary on).
set -euo pipefail

if [ $# -lt 5 ]; then
	echo "usage: $0 CACHE SUITE ARCH DEST PACKAGE..." >&2
	exit 2
fi
cache=$1 suite=$2 arch=$3 dest=$4
shift 4

mirror=$("$(dirname "$0")/debian-mirror.sh")
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || { echo "$0: $keyring is missing (apt-get install debian-archive-keyring)" >&2; exit 1; }

apt_dir=$cache/apt-$suite-$arch
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
echo "deb [arch=$arch signed-by=$keyring] $mirror $suite main" >"$apt_dir/sources.list"
apt_private=(
	-o "Dir::Etc::SourceList=$apt_dir/sources.list"
	-o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::Cache=$apt_dir/cache"
	-o Dir::State::Status=/dev/null
	-o Acquire::Check-Valid-Until=false
	-o "APT::Architecture=$arch"
	-o "APT::Architectures=$arch"
	# As root apt downloads as _apt, which cannot write the private directories.
	-o "APT::Sandbox::User=$(id -un)"
)

apt-get "${apt_private[@]}" -qq update
rm -f "$apt_dir"/debs/*.deb
(cd "$apt_dir/debs" && apt-get "${apt_private[@]}" -qq download "$@")

rm -rf "$dest.partial"
mkdir -p "$dest.partial"
: >"$dest.versions.partial"
for deb in "$apt_dir"/debs/*.deb; do
	dpkg-deb -x "$deb" "$dest.partial"
	dpkg-deb -f "$deb" Package Version | paste -sd ' ' | sed 's/^Package: \(.*\) Version: /\1 /' >>"$dest.versions.partial"
done
sort -o "$dest.versions.partial" "$dest.versions.partial"
rm -f "$apt_dir"/debs/*.deb
mv "$dest.partial" "$dest"
mv "$dest.versions.partial" "$dest.versions"
