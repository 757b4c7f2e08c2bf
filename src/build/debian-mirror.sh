#!/usr/bin/env bash
# Prints the host's own Debian mirror, read from its apt configuration
# (deb822 .sources files, then one-line .list files); the security and
# updates archives are other suites. The release build and test/setup.sh
# fetch other suites and architectures from it through a private apt
# configuration; the host's sources are only read.
set -euo pipefail

host_mirrors() {
	local file
	for file in /etc/apt/sources.list.d/*.sources; do
		[ -f "$file" ] && awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$file"
	done
	for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$file" ] && awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$file"
	done
	return 0
}

mirror=$(host_mirrors | grep -v -e security -e updates | head -n 1 || true)
if [ -z "$mirror" ]; then
	echo "$0: no Debian mirror found in the host's apt configuration" >&2
	exit 1
fi
printf '%s\n' "$mirror"
