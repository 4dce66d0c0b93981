#!/bin/sh
# The example payload's TAP 14 producer: passing, failing and skipped tests, on purpose.
echo "TAP version 14"
echo "1..5"
n=0
t() {
  n=$((n + 1))
  if sh -c "$2" >/dev/null 2>&1; then echo "ok $n - $1"
  else echo "not ok $n - $1"; echo "  ---"; echo "  command: '$2'"; echo "  ..."; fi
}
t proc-mounted 'grep -q "^proc /proc " /proc/mounts'
t arithmetic '[ $((6 * 7)) = 42 ]'
t fails-on-purpose '[ "$(uname -s)" = NetBSD ]'
n=$((n + 1)); echo "ok $n - network-up # SKIP this guest has no network"
t tmp-writable 'echo probe > /tmp/probe && [ "$(cat /tmp/probe)" = probe ]'
