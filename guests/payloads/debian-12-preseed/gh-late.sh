#!/bin/sh
# Run by the preseed's late_command inside the installed system (in-target).
# GRUB and the kernel on the serial port, without `quiet` (the test stage
# waits for the kernel's banner), and a short menu wait; then the one
# generated grub.cfg. systemd starts a getty on the kernel's serial console.
set -e
sed -i \
    -e 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=1/' \
    -e 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT=""/' \
    -e 's/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"/' \
    /etc/default/grub
cat >> /etc/default/grub <<'GRUB'
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB
update-grub
rm -f /root/gh-late.sh
