#!/bin/busybox sh
# guest-harness BusyBox init. Prints a marker, runs a few checks, then does
# what the kernel command line's `harness.mode=` asks (default: poweroff):
#   poweroff | reboot | panic (sysrq crash) | exit (init exits: kernel panic)
#   hang (print, then sleep forever) | shell (a shell on the console)
#   reboot-early (reboot before the marker) | marks (a numbered line on tty0
#   and the console once a second, for screen latency measurements)
# and `harness.require=WORD` withholds the marker unless WORD is on the
# command line too (a guest that needs a quirk). Kernel modules the recipe put
# in /lib/modules (its `load` file: names in load order) are loaded before the
# marker; one that fails is a HARNESS-CHECK FAILED line.
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mode=poweroff need=""
for word in $(cat /proc/cmdline); do
  case "$word" in
    harness.mode=*) mode="${word#harness.mode=}" ;;
    harness.require=*) need="${word#harness.require=}" ;;
  esac
done
[ "$mode" = reboot-early ] && reboot -f
if [ -n "$need" ]; then  # the marker only with this word on the command line (quirk tests)
  found=""
  for word in $(cat /proc/cmdline); do [ "$word" = "$need" ] && found=1; done
  [ -z "$found" ] && { echo "HARNESS-MISSING $need"; poweroff -f; }
fi
failed=0
check() {
  if sh -c "$2" >/dev/null 2>&1; then echo "HARNESS-CHECK ok: $1"
  else echo "HARNESS-CHECK FAILED: $1"; failed=$((failed + 1)); fi
}
if [ -f /lib/modules/load ]; then
  for mod in $(cat /lib/modules/load); do
    if why=$(insmod "/lib/modules/$mod.ko" 2>&1); then echo "HARNESS-CHECK ok: module-$mod"
    else echo "HARNESS-CHECK FAILED: module-$mod $why"; failed=$((failed + 1)); fi
  done
fi
echo "HARNESS-READY arch=$(uname -m) kernel=$(uname -r) cpus=$(grep -c ^processor /proc/cpuinfo) mode=$mode"
check proc-mounted 'grep -q "^proc /proc " /proc/mounts'
check memory-visible 'grep -q "^MemTotal:" /proc/meminfo'
check tmp-writable 'echo probe > /tmp/probe && [ "$(cat /tmp/probe)" = probe ]'
check cpu-works '[ "$(dd if=/dev/zero bs=1024 count=256 2>/dev/null | md5sum | cut -c1-8)" = ec87a838 ]'
echo "HARNESS-CHECKS done failed=$failed"
case "$mode" in
  panic) echo c > /proc/sysrq-trigger ;;
  exit) exit 1 ;;
  hang) echo "HARNESS-SLEEPING"; while :; do sleep 3600; done ;;
  shell) echo "HARNESS-SHELL"; exec setsid cttyhack sh ;;
  reboot) reboot -f ;;
  marks)  # the same line on the screen (tty0) and the serial console, once a second
    for i in 1 2 3 4 5 6 7 8; do
      sleep 1; echo "HARNESS-MARK $i" > /dev/tty0; echo "HARNESS-MARK $i"
    done; poweroff -f ;;
  *) poweroff -f ;;
esac
