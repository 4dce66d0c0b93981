#!/bin/sh
# Stage `install` of linux-busybox-stages-x86_64, run from the payload CD: partition
# the blank virtio disk (/dev/vda), make a FAT file system, write three files and their
# SHA-256 sums, as TAP. `--wrong-checksum` records a wrong sum for file2 (the test that
# shows stage `verify` catching a bad install).
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
echo "1..5"
printf 'o\nn\np\n1\n\n\nt\nc\nw\n' | fdisk /dev/vda >/dev/null 2>&1
[ -b /dev/vda1 ] || partprobe /dev/vda
[ -b /dev/vda1 ]; ok $? partition
mkdosfs -n STAGES /dev/vda1 >/dev/null 2>&1; ok $? format
mkdir -p /target && mount -t vfat /dev/vda1 /target; ok $? mount
i=1
while [ $i -le 3 ]; do  # sizes 16, 32 and 48 KiB of known but unequal bytes
  dd if=/dev/urandom of=/target/file$i bs=1024 count=$((16 * i)) 2>/dev/null
  i=$((i + 1))
done
(cd /target && sha256sum file1 file2 file3 > SHA256SUMS); ok $? write-files
if [ "$1" = --wrong-checksum ]; then  # every hex digit of file2's sum moved by one
  sum=$(sed -n 's/  file2$//p' /target/SHA256SUMS | tr 0-9a-f 1-9a-f0)
  sed -i "s/^[0-9a-f]*  file2\$/$sum  file2/" /target/SHA256SUMS
fi
umount /target && sync; ok $? unmount
