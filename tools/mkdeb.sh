#!/usr/bin/env bash
# tools/mkdeb.sh STAGE VERSION OUTDIR: turn STAGE/debian/sluice (a `make install
# DESTDIR=... PREFIX=/usr` tree) into OUTDIR/sluice_VERSION_ARCH.deb with plain dpkg-deb:
# no debhelper, no network. Depends come from dpkg-shlibdeps (dpkg-dev), or, without it,
# from the binaries' NEEDED entries mapped to packages with dpkg -S. Prints the .deb's path.
# Environment: DEB_MAINTAINER, SOURCE_DATE_EPOCH (timestamps, for a reproducible package),
# DEB_SHLIBDEPS=0 (use the NEEDED fallback even where dpkg-shlibdeps exists; tests use it).
set -euo pipefail

stage=$1 version=$2 outdir=$3
src=$(cd "$(dirname "$0")/.." && pwd)
root=$stage/debian/sluice
arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-sluice maintainers <sluice@example.org>}
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)}
bins=("$root/usr/sbin/sluiced" "$root/usr/bin/sluicectl")

[ -x "${bins[0]}" ] && [ -x "${bins[1]}" ] || {
	echo "mkdeb: $root lacks the binaries (make install DESTDIR=... first)" >&2
	exit 1
}

# Debian wants stripped binaries and compressed manual pages.
strip --remove-section=.comment --remove-section=.note --strip-unneeded "${bins[@]}"
find "$root/usr/share/man" -type f -name '*.[0-9]' -exec gzip -9nf {} +

doc=$root/usr/share/doc/sluice
install -d -m 0755 "$doc"
install -m 0644 "$src/packaging/deb/copyright" "$doc/copyright"
{
	printf 'sluice (%s) unstable; urgency=medium\n\n' "$version"
	printf '  * Release %s. See README.md for what it does and its limits.\n\n' "$version"
	printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$epoch")"
} | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

depends() {
	local needed lib path c pkg pkgs=()
	if [ "${DEB_SHLIBDEPS:-1}" = 1 ] && command -v dpkg-shlibdeps >/dev/null; then
		mkdir -p "$stage/debian"
		printf 'Source: sluice\n\nPackage: sluice\nArchitecture: any\n' >"$stage/debian/control"
		(cd "$stage" && dpkg-shlibdeps -O "${bins[@]#"$stage"/}" 2>/dev/null) |
			sed -n 's/^shlibs:Depends=//p'
		return
	fi
	needed=$(objdump -p "${bins[@]}" | awk '$1 == "NEEDED" { print $2 }' | sort -u)
	for lib in $needed; do
		path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
		[ -n "$path" ] || continue
		# dpkg knows a library by one side of usrmerge only: try both, and the link's target.
		for c in "$path" "${path#/usr}" "/usr$path" "$(readlink -f "$path")"; do
			pkg=$(dpkg -S "$c" 2>/dev/null | head -1 | cut -d: -f1)
			[ -n "$pkg" ] && pkgs+=("$pkg") && break
		done
	done
	printf '%s\n' "${pkgs[@]}" | grep -v '^$' | sort -u | paste -sd, | sed 's/,/, /g'
}
deps=$(depends)
[ -n "$deps" ] || {
	echo "mkdeb: cannot compute Depends" >&2
	exit 1
}

# Modes: directories 0755, files 0644, programs 0755; the config stays as installed.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f ! -perm -u+x -exec chmod 0644 {} +
chmod 0755 "${bins[@]}"

install -d -m 0755 "$root/DEBIAN"
for s in postinst prerm postrm; do
	install -m 0755 "$src/packaging/deb/$s" "$root/DEBIAN/$s"
done
(cd "$root" && find etc -type f -printf '/%p\n' | sort) >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
	-e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$deps|" "$src/packaging/deb/control.in" \
	>"$root/DEBIAN/control"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | LC_ALL=C sort |
	xargs -d '\n' md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
find "$root" -newermt "@$epoch" -exec touch -h -d "@$epoch" {} +

deb=$outdir/sluice_${version}_${arch}.deb
mkdir -p "$outdir"
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
