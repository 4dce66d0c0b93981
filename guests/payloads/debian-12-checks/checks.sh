#!/bin/sh
# TAP checks of the system the preseeded installer wrote
# (guests/debian-12-amd64-preseed.yaml, stage `test`): each line a test of
# something the preseed asked for. Typed into the guest by the harness
# (payload_dir) and run as `sh /tmp/payload/checks.sh`.
n=0
check() {  # check NAME COMMAND...: ok/not ok by COMMAND's exit status
    name=$1
    shift
    n=$((n + 1))
    if "$@" >/tmp/check.out 2>&1; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        sed 's/^/# /' /tmp/check.out
    fi
}
is() {  # is EXPECTED COMMAND...: COMMAND succeeds and prints EXPECTED
    want=$1
    shift
    got=$("$@") || { echo "failed: $*"; return 1; }
    [ "$got" = "$want" ] || { echo "expected '$want', got '$got'"; return 1; }
}

echo "1..10"
check debian-12 grep -qx 'VERSION_ID="12"' /etc/os-release
check hostname is gh-preseed hostname
check root-is-ext4 is ext4 findmnt -n -o FSTYPE /
check root-on-sda sh -c 'findmnt -n -o SOURCE / | grep -q "^/dev/sda"'
check swap-active sh -c 'swapon --show=NAME --noheadings | grep -q .'
check serial-getty is active systemctl is-active serial-getty@ttyS0.service
check task-ssh-server is "install ok installed" dpkg-query -W -f='${Status}' openssh-server
check dpkg-audit-clean is "" dpkg --audit
check late-command-ran grep -qx 'GRUB_TERMINAL=serial' /etc/default/grub
check no-failed-units is "" systemctl --failed --no-legend --plain
