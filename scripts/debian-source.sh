# shellcheck shell=bash
# Building from a Debian source package, cached by content (sourced by scripts/lab-qemu.sh
# and scripts/guest-fio.sh, which build from it).
#
#   debian_source SUITE PACKAGE VERSION TARBALL DIR
#     puts TARBALL (the orig tarball of PACKAGE's first source version starting with
#     VERSION) into DIR unless it is there; adds a deb-src line for SUITE (main) in
#     /etc/apt/sources.list.d/keel-SUITE-source.list when apt has none. Exits on failure.

_debsrc_say() { echo "debian-source: $*" >&2; }

# The deb-src line for SUITE, with the archive key that the host's own deb822 sources name
# (apt refuses two entries for one suite that differ in Signed-By), or with none.
_debsrc_line() {
	local suite=$1 list=/etc/apt/sources.list.d/keel-$1-source.list key=
	grep -rqsE "^deb-src .*debian/? $suite main" /etc/apt/sources.list /etc/apt/sources.list.d/ && return
	if grep -rqs "^Suites:.* $suite\( \|$\)" /etc/apt/sources.list.d/*.sources &&
		grep -rqs "^Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" /etc/apt/sources.list.d/*.sources; then
		key="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
	fi
	echo "deb-src ${key}http://deb.debian.org/debian $suite main" >"$list"
	apt-get update -qq || {
		_debsrc_say "apt-get update failed with $list; removing it"
		rm -f "$list"
		apt-get update -qq
		exit 1
	}
}

debian_source() {
	local suite=$1 pkg=$2 version=$3 tarball=$4 dir=$5 tmp v
	[ -s "$dir/$tarball" ] && return
	mkdir -p "$dir"
	_debsrc_line "$suite"
	v=$(apt-cache showsrc "$pkg" | awk -v want="$version" \
		'$1 == "Version:" && index($2, want) == 1 {print $2; exit}')
	[ -n "$v" ] || {
		_debsrc_say "apt knows no $pkg $version source package (apt-cache showsrc $pkg)"
		exit 1
	}
	tmp=$(mktemp -d)
	# The .dsc and .debian.tar.xz may be missing from the mirror: the orig tarball is what is
	# built from, so take it even when apt-get reports the others failed.
	(cd "$tmp" && apt-get source --download-only -qq "$pkg=$v" 2>&1 | grep -v "^W:" >&2 || true)
	[ -s "$tmp/$tarball" ] || {
		_debsrc_say "could not download $tarball (Debian's $pkg $version source)"
		exit 1
	}
	mv "$tmp/$tarball" "$dir/$tarball.tmp" && mv "$dir/$tarball.tmp" "$dir/$tarball"
	rm -rf "$tmp"
}

# debian_cached_build BINARY [--path]: the caller's build, cached by content: prints
# $cache/KEY/BINARY, after fetch_source and, when the cache lacks it, build DIR (both the
# caller's functions; KEY from its key_of, over $src/$tarball). With --path it fetches and
# builds nothing and fails when the source is not fetched yet.
# shellcheck disable=SC2154 # src, tarball and cache are the caller's
debian_cached_build() {
	local bin=$1 out
	if [ "${2:-}" = --path ]; then
		[ -s "$src/$tarball" ] || exit 1
		echo "$cache/$(key_of)/$bin"
		return
	fi
	fetch_source
	out=$cache/$(key_of)
	[ -x "$out/$bin" ] || build "$out"
	echo "$out/$bin"
}
