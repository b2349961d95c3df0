#!/usr/bin/env bash
# Runs every vmtests/NN-*.sh (or those named on the command line) and prints one summary
# line: "vmtests: N passed, N failed, N skipped". Exit 1 if any failed.
# A test exits 0 (pass), 77 (skip, with the reason printed) or anything else (fail).
set -u
cd "$(dirname "$0")/.."

tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(vmtests/[0-9][0-9]-*.sh)

passed=0 failed=0 skipped=0 failed_names=()
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	log=$(mktemp "/tmp/vmtest-$name.XXXXXX")
	start=$(date +%s)
	timeout -k 5 "${VMTEST_TIMEOUT:-300}" bash "$t" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0)
		passed=$((passed + 1))
		printf '[PASS] %-20s %3ds  %s checks\n' "$name" "$secs" "$(grep -c '^PASS: ' "$log")"
		;;
	77)
		skipped=$((skipped + 1))
		printf '[SKIP] %-20s %s\n' "$name" "$(grep -m1 '^SKIP: ' "$log" | cut -c7-)"
		;;
	*)
		failed=$((failed + 1))
		failed_names+=("$name")
		printf '[FAIL] %-20s %3ds  exit %d\n' "$name" "$secs" "$rc"
		sed 's/^/    /' "$log"
		;;
	esac
	rm -f "$log"
done
echo "vmtests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
