#!/bin/sh
# Stage `verify` of linux-busybox-stages-x86_64, run from the payload CD after a new
# boot: the disk stage `install` wrote is mounted and each file checked against its
# recorded SHA-256, as TAP (one test per file).
echo "1..4"
mkdir -p /target
if mount -t vfat -o ro /dev/vda1 /target; then echo "ok 1 - mount-installed-disk"
else echo "not ok 1 - mount-installed-disk"; echo "Bail out! no file system on /dev/vda1"
  exit 1; fi
n=1
for f in file1 file2 file3; do
  n=$((n + 1))
  if grep "  $f\$" /target/SHA256SUMS | (cd /target && sha256sum -c -s); then
    echo "ok $n - $f"
  else
    echo "not ok $n - $f"
    echo "# recorded: $(grep "  $f\$" /target/SHA256SUMS | cut -c1-16)..."
    echo "# on disk:  $(sha256sum < /target/$f | cut -c1-16)..."
  fi
done
umount /target
