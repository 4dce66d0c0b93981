#!/bin/sh
# The example payload's plain-lines producer, ended by a line the raw step waits for.
[ -d /sys/class ] && echo "PASS sysfs" || echo "FAIL sysfs"
[ -e /dev/null ] && echo "PASS dev-null" || echo "FAIL dev-null"
echo "SKIP framebuffer"
echo "LINES-DONE"
