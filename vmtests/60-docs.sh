#!/usr/bin/env bash
# The man pages agree with the programs: every long option that --help lists is in the man
# page's OPTIONS (and, for sluicectl, COMMANDS) and the other way round, and sluicectl's
# commands are the same in both; sluice.yaml(5)'s example is a valid config that uses every key
# the page documents, and each key it lists as not implemented is refused as such.
# `sluicectl completion bash` completes commands, options, values and service names (from the
# pinned maps, with --bpffs), and offers every option and command --help lists.
# `sluiced --version` and `sluicectl version` report the version, commit, libbpf, kernel and
# kernel features, and say "unknown" rather than guess without privileges.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"
. "$(dirname "$0")/ops.sh"
export LC_ALL=C # one collation for sort and comm

vt_require_root
vt_require_btf
for t in scdoc man col; do
	command -v "$t" >/dev/null || vt_skip "$t is missing (make deps installs it)"
done
vt_init docs
# Fresh binaries: the commit they report is HEAD's.
op_make all man || vt_fail "make all man: $(tail -n 5 "$VT_TMP/make.log")"
MAN=$VT_ROOT/build/man

# render PAGE: the page as plain text, one line per paragraph.
render() { MANWIDTH=1000 man -l "$MAN/$1" 2>/dev/null | col -bx; }
# section TEXT-FILE NAME...: the lines of those sections.
section() {
	local f=$1
	shift
	awk -v want=" $* " '/^[A-Z]/ { on = index(want, " " $0 " ") > 0; next } on' "$f"
}
same() { # same WHAT HELP-LIST MAN-LIST
	local help=$2 only_help only_man
	only_help=$(comm -23 <(echo "$2") <(echo "$3") | tr '\n' ' ')
	only_man=$(comm -13 <(echo "$2") <(echo "$3") | tr '\n' ' ')
	vt_check "$1: --help and the man page agree ($(echo "$2" | tr '\n' ' '))" \
		-d 'echo "only in --help: [$only_help]; only in the man page: [$only_man]"' -- \
		eval '[ -z "$only_help$only_man" ] && [ -n "$help" ]'
}

# --- sluiced(8) -------------------------------------------------------------------------------
render sluiced.8 >"$VT_TMP/sluiced.txt"
"$VA_SLUICED" --help >"$VT_TMP/sluiced.help"
same "sluiced options" "$(op_longopts <"$VT_TMP/sluiced.help")" \
	"$(section "$VT_TMP/sluiced.txt" OPTIONS | op_longopts)"
grep -qE '^ +sluiced \[-c FILE\]' "$VT_TMP/sluiced.txt" &&
	vt_pass "sluiced(8) SYNOPSIS" || vt_fail "sluiced(8) has no SYNOPSIS line"
same "sluiced synopsis" "$(head -n 2 "$VT_TMP/sluiced.help" | op_longopts)" \
	"$(section "$VT_TMP/sluiced.txt" SYNOPSIS | op_longopts)"

# --- sluicectl(8) -----------------------------------------------------------------------------
render sluicectl.8 >"$VT_TMP/sluicectl.txt"
"$VA_SLUICECTL" --help >"$VT_TMP/sluicectl.help"
same "sluicectl options" "$(op_longopts <"$VT_TMP/sluicectl.help")" \
	"$(section "$VT_TMP/sluicectl.txt" OPTIONS COMMANDS | op_longopts)"
help_cmds=$(sed -n '/^commands/,$p' "$VT_TMP/sluicectl.help" | awk 'NR > 1 { print $1 }' | LC_ALL=C sort)
man_cmds=$(section "$VT_TMP/sluicectl.txt" COMMANDS | grep -E '^ {7}[a-z]' | awk '{ print $1 }' | LC_ALL=C sort)
same "sluicectl commands" "$help_cmds" "$man_cmds"

# --- sluice.yaml(5) ---------------------------------------------------------------------------
render sluice.yaml.5 >"$VT_TMP/yaml.txt"
section "$VT_TMP/yaml.txt" EXAMPLE | sed 's/^ \{11\}//' >"$VT_TMP/example.yaml"
vt_check "sluice.yaml(5): the EXAMPLE passes sluiced --check" -O "$VT_TMP/check.out" -- \
	"$VA_SLUICED" -c "$VT_TMP/example.yaml" --check
documented=$(section "$VT_TMP/yaml.txt" AGENT SERVICES TRACING | grep -oE '^ +[a-z_]+:' | tr -d ' :' | sort -u)
unused=$(for k in $documented; do grep -qE "(^|[ {,])$k:" "$VT_TMP/example.yaml" || echo "$k"; done)
[ -n "$documented" ] && [ -z "$unused" ] &&
	vt_pass "sluice.yaml(5): the EXAMPLE uses every documented key ($(echo $documented))" ||
	vt_fail "sluice.yaml(5): documented keys missing from the EXAMPLE: $unused"
refused() { # refused KEY YAML: the parser refuses KEY as not implemented
	printf '%s\n' "$2" >"$VT_TMP/later.yaml"
	vt_check "sluice.yaml(5): '$1' is listed as not implemented, and it is refused as such" \
		-d 'echo "sluiced --check says: $(cat "$VT_TMP/later.out")"' -- \
		eval '! "$VA_SLUICED" -c "$VT_TMP/later.yaml" --check >"$VT_TMP/later.out" 2>&1 &&
		grep -q "not implemented in this version" "$VT_TMP/later.out"'
}
svc=$'services:\n  - name: a\n    frontend: 198.19.0.1:80\n'
later=$(section "$VT_TMP/yaml.txt" "NOT YET IMPLEMENTED" | tr '\n' ' ')
# The agent keys the page lists there (none since agent.node was implemented).
for k in $(grep -oE 'agent\.[a-z_]+' <<<"$later"); do
	refused "$k" "$(printf 'agent:\n  %s: x\n' "${k#agent.}")"
done


# --- --log-format -----------------------------------------------------------------------------
"$VA_SLUICED" --log-format yaml >/dev/null 2>"$VT_TMP/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "want logfmt or journal, not 'yaml'" "$VT_TMP/err" &&
	vt_pass "--log-format yaml: exit 2, named" || vt_fail "--log-format yaml: exit $rc $(cat "$VT_TMP/err")"
printf 'agent:\n  bpffs: /sys/fs/bpf/%s-none\n' "$VT_ID" >"$VT_TMP/none.yaml"
# --teardown with nothing pinned logs one info line: a way to see the format without a datapath.
"$VA_SLUICED" -c "$VT_TMP/none.yaml" --teardown --log-format=journal 2>"$VT_TMP/j.log"
grep -qE '^<6>ts=.* level=info msg="torn down' "$VT_TMP/j.log" && ! grep -qvE '^<[3467]>ts=' "$VT_TMP/j.log" &&
	vt_pass "--log-format=journal: <6> on info lines" || vt_fail "journal format: $(cat "$VT_TMP/j.log")"
JOURNAL_STREAM=1:1 "$VA_SLUICED" -c "$VT_TMP/none.yaml" --teardown 2>"$VT_TMP/j.log"
grep -q '^ts=' "$VT_TMP/j.log" && vt_pass "a JOURNAL_STREAM that is not stderr keeps logfmt" ||
	vt_fail "JOURNAL_STREAM=1:1: $(cat "$VT_TMP/j.log")"

# --- version ----------------------------------------------------------------------------------
"$VA_SLUICED" --version >"$VT_TMP/v1"
"$VA_SLUICECTL" version >"$VT_TMP/v2"
commit=$(git -C "$VT_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
version=$(sed -n 's/^VERSION *?= *//p' "$VT_ROOT/Makefile")
grep -qx "sluiced $version" "$VT_TMP/v1" && grep -qx "sluicectl $version" "$VT_TMP/v2" &&
	vt_pass "version: $version" || vt_fail "version lines: $(head -n 1 "$VT_TMP/v1") / $(head -n 1 "$VT_TMP/v2")"
grep -qx "commit: *$commit" "$VT_TMP/v1" && vt_pass "commit: $commit (git rev-parse --short HEAD)" ||
	vt_fail "commit: $(grep commit "$VT_TMP/v1"), want $commit"
libbpf=$(pkg-config --modversion libbpf 2>/dev/null | cut -d. -f1,2)
grep -qx "libbpf: *$libbpf" "$VT_TMP/v1" && vt_pass "libbpf: $libbpf" ||
	vt_fail "libbpf: $(grep libbpf "$VT_TMP/v1"), want $libbpf"
grep -qx "kernel: *$(uname -r)" "$VT_TMP/v1" && vt_pass "kernel: $(uname -r)" || vt_fail "kernel line"
diff <(tail -n +2 "$VT_TMP/v1") <(tail -n +2 "$VT_TMP/v2") >/dev/null &&
	vt_pass "sluicectl version reports what sluiced --version reports" ||
	vt_fail "the two reports differ: $(diff <(tail -n +2 "$VT_TMP/v1") <(tail -n +2 "$VT_TMP/v2") | tr '\n' ' ')"
feature() { awk -v f="$1" '$1 == f { print $2 }' "$2"; }
kver=$(uname -r | awk -F. '{ print $1 * 1000 + $2 }')
for f in btf cgroup2 ringbuf sk_storage bpf_set_retval; do
	[ "$(feature "$f" "$VT_TMP/v1")" = yes ] && vt_pass "feature $f: yes (root)" ||
		vt_fail "feature $f: '$(feature "$f" "$VT_TMP/v1")'"
done
want=no
[ "$kver" -ge 6006 ] && want=yes
[ "$(feature tcx "$VT_TMP/v1")" = "$want" ] && vt_pass "feature tcx: $want on $(uname -r)" ||
	vt_fail "feature tcx: '$(feature tcx "$VT_TMP/v1")', want $want"
want=no
[ "$kver" -ge 6005 ] && want=yes
[ "$(feature bpf_sock_destroy "$VT_TMP/v1")" = "$want" ] && vt_pass "feature bpf_sock_destroy: $want" ||
	vt_fail "feature bpf_sock_destroy: '$(feature bpf_sock_destroy "$VT_TMP/v1")', want $want"
"$VA_SLUICECTL" -o json version >"$VT_TMP/v.json"
jq -e --arg c "$commit" --arg v "$version" '.version == $v and .commit == $c and
	.features.ringbuf == true and .features.sk_storage == true and .unknown == null' \
	"$VT_TMP/v.json" >/dev/null && vt_pass "sluicectl -o json version" || vt_fail "json: $(cat "$VT_TMP/v.json")"
if id nobody >/dev/null 2>&1; then
	setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
		"$VA_SLUICECTL" -o json version >"$VT_TMP/nobody.json" 2>&1
	jq -e '.features.ringbuf == null and .features.bpf_set_retval == null and
		.features.btf == true and (.unknown | test("needs root"))' "$VT_TMP/nobody.json" >/dev/null &&
		vt_pass "unprivileged: kernel probes are null (unknown), and the reason is given" ||
		vt_fail "unprivileged version: $(cat "$VT_TMP/nobody.json")"
fi

# --- completion -------------------------------------------------------------------------------
vt_topology
vt_cgroup
vt_bpffs
cfg=$VT_TMP/sluice.yaml
va_config "$cfg" <<'YAML'
services:
  - name: web
    frontend: 198.19.0.10:80
    backends:
      - address: 198.18.1.2:8080
  - name: web-admin
    frontend: 198.19.0.11:80
  - name: dns
    frontend: 198.19.0.53:53
    protocol: udp
YAML
va_start "$cfg" || vt_finish
"$VA_SLUICECTL" completion bash >"$VT_TMP/completion.bash"
bash -n "$VT_TMP/completion.bash" && vt_pass "completion script: valid bash" ||
	vt_fail "completion script does not parse"
# comp WORDS...: COMPREPLY for the command line WORDS (the last word is the one completed),
# as the sorted words, in a clean bash that sourced the script.
comp() {
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _sluicectl
		((${#COMPREPLY[@]})) && printf "%s\n" "${COMPREPLY[@]}" | LC_ALL=C sort | tr "\n" " "' _ "$VT_TMP/completion.bash" "$@" \
		2>"$VT_TMP/comp.err"
}
expect() { # expect WANT WORDS...
	local want=$1 got
	shift
	got=$(comp "$@")
	[ "$got" = "$want" ] && [ ! -s "$VT_TMP/comp.err" ] && vt_pass "complete '${*:2}': $want" ||
		vt_fail "complete '${*:2}': got '$got', want '$want' $(cat "$VT_TMP/comp.err")"
}
S=$VA_SLUICECTL
cmds=$(echo "$help_cmds" | sort | tr '\n' ' ')
expect "$cmds" "$S" ""
expect "services status " "$S" s
expect "services " "$S" se
expect "dot json table " "$S" -o ""
expect "json " "$S" --output = j
expect "bash " "$S" completion ""
expect "--service " "$S" flows --
expect "dns web web-admin " "$S" --bpffs "$VT_BPFFS" services ""
expect "web web-admin " "$S" --bpffs "$VT_BPFFS" serv w
expect "web web-admin " "$S" --bpffs = "$VT_BPFFS" se web
expect "dns " "$S" --bpffs "$VT_BPFFS" flows --service d
expect "dns web web-admin " "$S" --bpffs "$VT_BPFFS" -o json flows --service = ""
expect "" "$S" --bpffs "$VT_BPFFS" services web ""
expect "" "$S" --bpffs "$VT_TMP/nothing-pinned" services ""
# Before the command, the long options are the global ones of --help: all but those that the
# commands section lists as a command's own (--service, --weight, ...).
cmd_opts=$(sed -n '/^commands/,$p' "$VT_TMP/sluicectl.help" | op_longopts)
same "completion of global options" "$(op_longopts <"$VT_TMP/sluicectl.help" | grep -vxF -- "$cmd_opts")" \
	"$(comp "$S" -- | tr ' ' '\n' | grep . | sort)"
vt_finish
