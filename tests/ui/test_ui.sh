#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The service map page (/ui) in a real browser: headless Chromium loads it from a fake agent
# (tests/ui/fake_graph.py on 127.0.0.1) that answers /graph from scripted documents, and the
# DOM it leaves is checked by tests/ui/check_dom.py: every node and edge drawn, rates, badges,
# failure classes, names shown as text, the status line, and no request but /ui and /graph.
#
#   bash tests/ui/test_ui.sh        PASS:/FAIL: lines, then "N passed, N failed"
#   UI_PAGE=FILE                    test another copy of the page (default userspace/ui/graph.html)
#   UI_SCREENSHOT=FILE              where the screenshot goes (default /tmp/sluice-ui.png)
# Exit 0 if all passed, 1 if any failed, 77 (skip) without chromium or python3.
set -u
cd "$(dirname "$0")/../.." || exit 1

page=${UI_PAGE:-userspace/ui/graph.html}
shot=${UI_SCREENSHOT:-/tmp/sluice-ui.png}
chromium=${CHROMIUM:-chromium}

for tool in "$chromium" python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool is not installed (make deps installs it)"
		exit 77
	fi
done
if [ ! -r "$page" ]; then
	echo "FAIL: cannot read the page $page"
	exit 1
fi

dir=$(mktemp -d /tmp/sluice-ui-test.XXXXXX) || exit 1
srv_pid=
cleanup() {
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null
		wait "$srv_pid" 2>/dev/null
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

passed=0 failed=0
report() { # report OUTPUT: echo check lines and count them
	printf '%s\n' "$1"
	passed=$((passed + $(printf '%s\n' "$1" | grep -c '^PASS: ')))
	failed=$((failed + $(printf '%s\n' "$1" | grep -c '^FAIL: ')))
}
fail() {
	echo "FAIL: $*"
	failed=$((failed + 1))
}

# start_server NAME: the fake agent for DIR/NAME.json, logging to DIR/NAME.log; sets $port.
start_server() {
	local name=$1 _
	rm -f "$dir/port"
	python3 tests/ui/fake_graph.py --page "$page" --sequence "$dir/$name.json" \
		--log "$dir/$name.log" --port-file "$dir/port" 2>"$dir/$name.srv.err" &
	srv_pid=$!
	for _ in $(seq 50); do
		[ -s "$dir/port" ] && break
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -s "$dir/port" ]; then
		fail "$name: fake agent did not start: $(tr '\n' ' ' <"$dir/$name.srv.err")"
		return 1
	fi
	port=$(cat "$dir/port")
}

stop_server() {
	kill "$srv_pid" 2>/dev/null
	wait "$srv_pid" 2>/dev/null
	srv_pid=
}

# browse BUDGET_MS QUERY ARGS...: headless chromium on /ui?QUERY, with a fresh profile.
browse() {
	local budget=$1 query=$2 profile
	shift 2
	profile=$(mktemp -d "$dir/profile.XXXXXX")
	timeout -k 5 45 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --disable-background-networking --disable-component-update \
		--disable-sync --user-data-dir="$profile" --virtual-time-budget="$budget" \
		"$@" "http://127.0.0.1:$port/ui$query" 2>>"$dir/chromium.err"
}

# scenario NAME BUDGET_MS QUERY INTERVAL_S: load the page, dump the DOM, check it.
scenario() {
	local name=$1 budget=$2 query=$3 interval=$4
	local rc
	start_server "$name" || return
	: >"$dir/chromium.err"
	browse "$budget" "$query" --dump-dom >"$dir/$name.dom"
	rc=$?
	stop_server
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		# An alert() (or any dialog) stops headless chromium's virtual clock for good.
		fail "$name: chromium did not finish in 45 s: a dialog such as alert() blocks it (did markup in a name run?)"
		return
	elif [ "$rc" -ne 0 ]; then
		fail "$name: chromium --dump-dom exited $rc: $(grep -v dbus "$dir/chromium.err" | tail -n 3 | tr '\n' ' ')"
		return
	fi
	report "$(python3 tests/ui/check_dom.py check "$name" "$dir" "$interval" 2>&1)"
}

python3 tests/ui/check_dom.py gen "$dir" || { fail "cannot write the scenarios"; exit 1; }

# Refreshes at t = 0, 2, 4 s of virtual time (the default interval); 5 s ends before the 4th.
scenario main 5000 "" 2
# ?interval=0.5: refreshes at 0, 0.5, ... 2.0 s.
scenario interval 2200 "?interval=0.5" 0.5
# The first answer is a map, the next ones HTTP 503.
scenario error 3000 "" 2
scenario empty 1000 "" 2
# 50 services x 10 backends, drawn in full, then folded to 4 per service.
scenario big 3000 "" 2
scenario fold 3000 "?fold=4" 2

# A static check: data never reaches the page as markup.
if grep -nE 'innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function' "$page" \
	>"$dir/grep.out"; then
	fail "the page uses an HTML-parsing or eval API: $(head -n 3 "$dir/grep.out" | tr '\n' ' ')"
else
	echo "PASS: the page never parses data as HTML or code (no innerHTML, document.write, eval)"
	passed=$((passed + 1))
fi

# The page as sluiced holds it: embed.sh's header, compiled with the build's warnings, gives
# back the page byte for byte.
cc=${CC:-cc}
if command -v "$cc" >/dev/null; then
	printf '%s\n' '#include <stdio.h>' '#include "ui_html.h"' 'int main(void);' 'int main(void)' \
		'{ return fwrite(sl_ui_html, 1, SL_UI_HTML_LEN, stdout) != SL_UI_HTML_LEN; }' >"$dir/emb.c"
	if userspace/ui/embed.sh "$page" "$dir/ui_html.h" sl_ui_html 2>"$dir/emb.err" &&
		"$cc" -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
			-I"$dir" "$dir/emb.c" -o "$dir/emb" 2>>"$dir/emb.err" &&
		"$dir/emb" | cmp -s - "$page"; then
		echo "PASS: userspace/ui/embed.sh turns the page into a C array that compiles and round-trips"
		passed=$((passed + 1))
	else
		fail "userspace/ui/embed.sh: the compiled array is not the page byte for byte" \
			"$(head -n 3 "$dir/emb.err" | tr '\n' ' ')"
	fi
else
	echo "NOTE: no C compiler ($cc): embed.sh not checked"
fi

# The screenshot, a test artifact for a person to look at.
rm -f "$shot"
if start_server main; then
	browse 5000 "" --screenshot="$shot" --window-size=1400,900 >/dev/null
	stop_server
	if [ "$(head -c 8 "$shot" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
		echo "PASS: screenshot saved to $shot"
		passed=$((passed + 1))
	else
		fail "no PNG screenshot at $shot"
	fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
