#!/bin/sh
# The example payload's JUnit producer: writes $1 (one pass, one failure, one skip).
out=${1:-/tmp/junit.xml}
mem=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
{
  echo '<?xml version="1.0" encoding="UTF-8"?>'
  echo '<testsuites><testsuite name="busybox-demo" tests="3">'
  if [ "$(uname -s)" = Linux ]; then echo '<testcase classname="demo" name="kernel-is-linux"/>'
  else echo '<testcase classname="demo" name="kernel-is-linux"><failure message="not Linux"/></testcase>'; fi
  if [ "$mem" -gt 1048576 ]; then echo '<testcase classname="demo" name="memory-over-1g"/>'
  else echo "<testcase classname=\"demo\" name=\"memory-over-1g\"><failure message=\"MemTotal is $mem kB\">the guest has 256 MiB on purpose</failure></testcase>"; fi
  echo '<testcase classname="demo" name="kvm-device"><skipped message="no nested virtualisation here"/></testcase>'
  echo '</testsuite></testsuites>'
} > "$out"
