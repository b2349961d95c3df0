#!/usr/bin/env bash
# Reloads while a client loop runs: a backend added by rewriting the file, one removed by an
# editor-style replace (rename over the file), then bad configs by SIGHUP and by file change.
# No connection may fail, the changes must take effect, and a bad config changes nothing.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent.sh"

vt_world reload

cfg=$VT_TMP/sluice.yaml
svc() { # svc LB BACKEND...
	local lb=$1 b
	shift
	printf 'services:\n  - name: web\n    frontend: 198.19.0.10:80\n    lb: %s\n    backends:\n' "$lb"
	for b in "$@"; do printf '      - address: %s\n' "$b"; done
}
backends_now() { va_ctl -o json services web | jq -r '[.[0].backends[].address] | join(" ")'; }
backends_are() { [ "$(backends_now)" = "$1" ]; }

svc maglev 198.18.1.2:8080 198.18.1.3:8080 | va_config "$cfg"
va_start "$cfg" || vt_finish

loop=$VT_TMP/loop.out
vt_client loop 198.19.0.10:80 --seconds 9 --interval-ms 3 >"$loop" &
loop_pid=$!
sleep 1

# 1. Add be3 by rewriting the file in place (inotify IN_CLOSE_WRITE).
svc maglev 198.18.1.2:8080 198.18.1.3:8080 198.18.1.4:8080 | va_config "$cfg"
vt_check "file rewrite: be3 added within 3 s" -d 'echo "backends are $(backends_now)"' -- \
	vt_wait_until 3 backends_are "198.18.1.2:8080 198.18.1.3:8080 198.18.1.4:8080"
sleep 1

# 2. Remove be1 the way editors save: write a new file, rename it over the old one.
svc maglev 198.18.1.3:8080 198.18.1.4:8080 | va_config "$cfg.new"
mv "$cfg.new" "$cfg"
vt_check "rename over the file: be1 removed within 3 s" -d 'echo "backends are $(backends_now)"' -- \
	vt_wait_until 3 backends_are "198.18.1.3:8080 198.18.1.4:8080"
sleep 1

# 3. A bad config by SIGHUP: rejected, old state untouched.
before=$(va_ctl -o json services)
rejected=$(grep -c 'config rejected' "$VA_LOG")
{
	svc maglev 198.18.1.2:8080
	echo "    bogus_key: 1"
} | va_config "$cfg.bad"
cp "$cfg" "$cfg.good"
cp "$cfg.bad" "$VT_TMP/bad-copy.yaml"
# Replace atomically, then signal; the inotify reload sees the same bad file.
mv "$cfg.bad" "$cfg"
kill -HUP "$VA_PID"
vt_check "bad config rejected" -- vt_wait_until 3 va_log_count_ge 'config rejected' $((rejected + 1)) &&
	vt_log "$(grep -m1 'bogus_key' "$VA_LOG" | sed 's/.*error=//')"
sleep 0.5
after=$(va_ctl -o json services)
# Counters move; compare the configuration only.
shape() { jq -c '[.[] | {name, frontend, lb, b: [.backends[] | {address, weight, state}]}]'; }
vt_check "after the bad config the maps are unchanged" -d 'shape <<<"$after"' -- \
	[ "$(shape <<<"$before")" = "$(shape <<<"$after")" ]

# 4. An invalid value (not just a key) through a file change is rejected as well.
svc maglev 198.18.1.2:99999 | va_config "$cfg"
vt_check "invalid port via file change rejected" -- \
	vt_wait_until 3 va_log_count_ge 'config rejected' $((rejected + 2))
[ "$(backends_now)" = "198.18.1.3:8080 198.18.1.4:8080" ] && vt_pass "still serving be2, be3" ||
	vt_fail "backends changed to '$(backends_now)'"

wait "$loop_pid"
rc=$?
total=$(($(vt_value "$loop" ok) + $(vt_value "$loop" fail)))
vt_check "client loop: $total connections across 4 reloads, 0 failed" \
	-d 'echo "rc=$rc: $(tr "\n" " " <"$loop")"' -- \
	eval '[ "$rc" -eq 0 ] && [ "$(vt_value "$loop" fail)" -eq 0 ] && [ "$total" -gt 500 ]'
[ "$(vt_value "$loop" be3)" -gt 0 ] && vt_pass "be3 took traffic after it was added" ||
	vt_fail "be3 took no traffic"

# The agent is still healthy and applies a good config again.
cp "$cfg.good" "$cfg"
kill -HUP "$VA_PID"
vt_wait_until 3 va_log_count_ge 'config applied' 4 &&
	vt_pass "a good config applies after the rejected ones" || vt_fail "no apply after recovery"

# 5. An edit then SIGHUP (what tools and operators do): the SIGHUP applies it, and the
# watcher's event for the same edit does not reload again (#17: at 10 000 services that second
# reload cost seconds). A real change after that is still applied by the watcher.
reloads=$(grep -c 'msg="reloading"' "$VA_LOG")
skipped=$(grep -c 'not reloading' "$VA_LOG")
svc maglev 198.18.1.2:8080 198.18.1.4:8080 | va_config "$cfg"
kill -HUP "$VA_PID"
vt_check "edit + SIGHUP: applied" -d 'echo "backends are $(backends_now)"' -- \
	vt_wait_until 3 backends_are "198.18.1.2:8080 198.18.1.4:8080"
vt_check "edit + SIGHUP: the watcher's event is skipped" -d 'grep reload "$VA_LOG" | tail -5' -- \
	vt_wait_until 3 va_log_count_ge 'not reloading' $((skipped + 1))
sleep 0.5
n=$(($(grep -c 'msg="reloading"' "$VA_LOG") - reloads))
vt_check "edit + SIGHUP: one reload, not two" -d 'echo "$n reloads"' -- [ "$n" -eq 1 ]
svc maglev 198.18.1.3:8080 | va_config "$cfg"
vt_check "a change after the skipped event is applied by the watcher" \
	-d 'echo "backends are $(backends_now)"' -- vt_wait_until 3 backends_are "198.18.1.3:8080"

va_stop TERM
[ "$VA_RC" -eq 0 ] && vt_pass "SIGTERM: exit 0" || vt_fail "SIGTERM: exit $VA_RC"
vt_finish
