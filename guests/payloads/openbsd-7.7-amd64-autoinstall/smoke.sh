#!/bin/sh
# A smoke test of an installed OpenBSD base system, in TAP. OpenBSD's own regress
# suite needs /usr/src (and building it), which the release sets do not carry; these
# checks use only the installed sets and exercise what a hypervisor port can break:
# the kernel's view of itself, file I/O on the installed disk, the CPU and FPU
# through code the base compiler builds, known-answer crypto, and a few base tools.
# Each test prints one TAP line; a test whose set is missing is skipped.

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "$2" ] && echo "# $2"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { name=$1; shift; if "$@" >/tmp/smoke.out 2>&1; then ok "$name"; else
    notok "$name" "$(tail -n 3 /tmp/smoke.out | tr '\n' ' ')"; fi; }

echo "1..10"

rel=$(sysctl -n kern.osrelease)
[ "$(uname -s)" = OpenBSD ] && [ "$rel" = 7.7 ] && ok "kernel reports OpenBSD 7.7" ||
    notok "kernel reports OpenBSD 7.7" "uname -s: $(uname -s), kern.osrelease: $rel"

check "root file system is FFS on wd0a" sh -c 'mount | grep -q "^/dev/wd0a .* on / type ffs"'

# 64 MiB of random data through the file system on the installed disk and back
check "file round trip on the installed disk" sh -c \
    'dd if=/dev/random of=/var/tmp/smoke.a bs=1m count=64 2>/dev/null &&
     cp /var/tmp/smoke.a /var/tmp/smoke.b && sync && cmp /var/tmp/smoke.a /var/tmp/smoke.b;
     s=$?; rm -f /var/tmp/smoke.a /var/tmp/smoke.b; exit $s'

# FIPS 180-2's known answer for SHA-256("abc")
check "sha256 known answer" sh -c '[ "$(sha256 -q -s abc)" = \
    ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad ]'

check "signify key pair, sign and verify" sh -c \
    'cd /tmp && rm -f smoke.pub smoke.sec smoke.msg smoke.msg.sig &&
     signify -G -n -p smoke.pub -s smoke.sec -c smoke >/dev/null &&
     echo hello >smoke.msg && signify -S -s smoke.sec -m smoke.msg &&
     signify -V -q -p smoke.pub -m smoke.msg'

check "release signing key installed" test -f /etc/signify/openbsd-77-base.pub

check "pf parses the default ruleset" pfctl -nf /etc/pf.conf

if [ -x /usr/bin/cc ]; then
    cat >/tmp/smoke.c <<'C'
#include <stdio.h>
#include <math.h>
int main(void) {
	double s = 0;
	long k;
	for (k = 1; k <= 2000000; k++)
		s += 1.0 / ((double)k * k);
	printf("%.5f\n", sqrt(6 * s));
	return 0;
}
C
    check "cc builds and runs a floating-point program" sh -c \
        'cc -O2 -o /tmp/smoke /tmp/smoke.c -lm && [ "$(/tmp/smoke)" = 3.14159 ]'
else
    skip "cc builds and runs a floating-point program" "no comp set"
fi

check "perl arithmetic" sh -c '[ "$(perl -e "print 6 * 7")" = 42 ]'

check "ksh arithmetic" ksh -c '[ $((1 << 10)) -eq 1024 ]'
