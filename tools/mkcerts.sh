#!/usr/bin/env bash
# mkcerts.sh: a test CA and SPIFFE certificates for sluice's mutual TLS (mtls: in sluice.yaml),
# made with the openssl command-line tool. For the demo, the tests and first users; a
# production mesh brings its own CA.
#
# Usage: tools/mkcerts.sh DIR TRUST_DOMAIN [OPTIONS] [IDENTITY...]
#
#   DIR/ca.pem, DIR/ca.key    the CA (EC P-256, 10 years), made unless DIR already has one
#   DIR/<identity>.pem/.key   for each IDENTITY: SAN URI spiffe://TRUST_DOMAIN/identity/<identity>
#   DIR/node.pem, node.key    SAN URI spiffe://TRUST_DOMAIN/node/<node>
#
# Options:
#   --node NAME      the node's name (default: the host name)
#   --no-node        make no node.pem/node.key
#   --ca-from CADIR  sign with CADIR/ca.pem + CADIR/ca.key instead (DIR gets no CA of its own)
#   --days N         leaf certificates valid for N days from now (default 365)
#   --expired        leaf certificates that expired yesterday (valid from 3 days ago)
#   --not-yet-valid  leaf certificates valid from tomorrow on
#   --san URI        put URI as the SAN of every certificate made (tests: a wrong SAN)
#
# A certificate for another trust domain is a second run with that TRUST_DOMAIN into another
# DIR, with --ca-from to keep the CA; one from another CA is a run into another DIR without it.
# Keys are mode 0600. One line per certificate on stdout:
#   <file> serial=<HEX> not_after=<YYYY-MM-DDTHH:MM:SSZ> uri=<SAN URI>
# The serial is in the same form as `openssl x509 -noout -serial` (and sluicectl status).
#
# Examples:
#   tools/mkcerts.sh /etc/sluice/mtls sluice.test --node node1 frontend batch
#   tools/mkcerts.sh /tmp/new sluice.test --ca-from /etc/sluice/mtls frontend   # rotation
set -euo pipefail

usage() {
	sed -n '3,/^set -e/{/^set -e/d;s/^# \{0,1\}//p}' "$0" >&2
	exit 2
}
die() {
	echo "mkcerts: $*" >&2
	exit 1
}

[ $# -ge 2 ] || usage
dir=$1
td=$2
shift 2
node=$(hostname)
make_node=1
ca_from=
days=365
start=
end=
san=
ids=()
while [ $# -gt 0 ]; do
	case $1 in
	--node) [ $# -ge 2 ] || usage; node=$2; shift ;;
	--no-node) make_node=0 ;;
	--ca-from) [ $# -ge 2 ] || usage; ca_from=$2; shift ;;
	--days) [ $# -ge 2 ] || usage; days=$2; shift ;;
	--expired)
		start=$(date -u -d '-3 days' +%Y%m%d%H%M%SZ)
		end=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ) ;;
	--not-yet-valid)
		start=$(date -u -d '+1 day' +%Y%m%d%H%M%SZ)
		end=$(date -u -d '+30 days' +%Y%m%d%H%M%SZ) ;;
	--san) [ $# -ge 2 ] || usage; san=$2; shift ;;
	-h | --help) usage ;;
	-*) echo "mkcerts: unknown option $1" >&2; usage ;;
	*) ids+=("$1") ;;
	esac
	shift
done

name_ok() { [[ $1 =~ ^[a-z0-9][a-z0-9_.-]*$ ]] && [ ${#1} -lt 64 ]; }
[[ $td =~ ^[a-z0-9][a-z0-9.-]*$ ]] || die "bad trust domain '$td' (lowercase letters, digits, '.', '-')"
[[ $days =~ ^[1-9][0-9]*$ ]] || die "bad --days '$days'"
for i in "${ids[@]}"; do
	name_ok "$i" || die "bad identity name '$i' ([a-z0-9][a-z0-9_.-]*, under 64)"
	case $i in node | ca) die "'$i' is reserved (it names node.pem or ca.pem)" ;; esac
done
[ $make_node -eq 0 ] || name_ok "$node" || die "bad node name '$node'"
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"

umask 077
mkdir -p "$dir"
export SL_SAN=unused # the config names it; each leaf sets its own
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One minimal config: nothing from the system's openssl.cnf leaks into the certificates.
cat >"$work/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ca]
default_ca = sl
[sl]
dir = $work
database = $work/index.txt
serial = $work/serial
new_certs_dir = $work
default_md = sha256
policy = pol
unique_subject = no
copy_extensions = none
email_in_dn = no
[pol]
commonName = supplied
organizationName = optional
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth,serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = URI:\${ENV::SL_SAN}
EOF
: >"$work/index.txt"

genkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ -n "$ca_from" ]; then
	ca_pem=$ca_from/ca.pem
	ca_key=$ca_from/ca.key
	if [ ! -r "$ca_pem" ] || [ ! -r "$ca_key" ]; then die "$ca_from: no readable ca.pem and ca.key"; fi
else
	ca_pem=$dir/ca.pem
	ca_key=$dir/ca.key
	if [ ! -e "$ca_pem" ]; then
		genkey "$ca_key" || die "EC key for the CA failed"
		openssl req -config "$work/openssl.cnf" -new -x509 -key "$ca_key" -days 3650 \
			-subj "/O=sluice/CN=sluice test CA $td" -extensions v3_ca -out "$ca_pem" \
			2>"$work/err" || die "CA certificate: $(cat "$work/err")"
		chmod 0644 "$ca_pem"
	fi
fi

# leaf FILE_BASE CN URI
leaf() {
	local base=$1 cn=$2 uri=$3 dates=()
	[ -z "$san" ] || uri=$san
	if [ -n "$start" ]; then dates=(-startdate "$start" -enddate "$end"); else dates=(-days "$days"); fi
	genkey "$work/key.pem" || die "EC key for $cn failed"
	openssl req -config "$work/openssl.cnf" -new -key "$work/key.pem" -subj "/CN=$cn" \
		-out "$work/req.pem" 2>"$work/err" || die "request for $cn: $(cat "$work/err")"
	SL_SAN=$uri openssl ca -config "$work/openssl.cnf" -batch -notext -rand_serial \
		-cert "$ca_pem" -keyfile "$ca_key" -extensions leaf "${dates[@]}" \
		-subj "/O=$td/CN=$cn" -in "$work/req.pem" -out "$work/cert.pem" \
		2>"$work/err" || die "signing $cn: $(cat "$work/err")"
	: >"$work/index.txt"
	install -m 0600 "$work/key.pem" "$dir/$base.key"
	install -m 0644 "$work/cert.pem" "$dir/$base.pem"
	local serial enddate
	serial=$(openssl x509 -in "$dir/$base.pem" -noout -serial)
	enddate=$(openssl x509 -in "$dir/$base.pem" -noout -enddate)
	printf '%s %s not_after=%s uri=%s\n' "$dir/$base.pem" "$serial" \
		"$(date -u -d "${enddate#notAfter=}" +%Y-%m-%dT%H:%M:%SZ)" "$uri"
}

for i in "${ids[@]}"; do
	leaf "$i" "$i" "spiffe://$td/identity/$i"
done
[ $make_node -eq 0 ] || leaf node "node $node" "spiffe://$td/node/$node"
