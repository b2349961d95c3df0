#!/usr/bin/env bash
# The service map page (/ui, userspace/ui/graph.html) in a real browser: headless Chromium loads
# it from a fake agent on 127.0.0.1 (tests/ui/fake_graph.py) and tests/ui/test_ui.sh checks the
# drawn DOM: every node and edge, rates between refreshes, state badges, escaping, and that the
# page fetched nothing but /ui and /graph. Skipped without chromium (make deps installs it).
set -u
cd "$(dirname "$0")/.." || exit 1
command -v chromium >/dev/null || {
	echo "SKIP: chromium is missing (make deps installs it)"
	exit 77
}
out=$(mktemp /tmp/sl-ui.XXXXXX) || exit 1
trap 'rm -f "$out"' EXIT
bash tests/ui/test_ui.sh >"$out" 2>&1
rc=$?
cat "$out"
exit $rc
