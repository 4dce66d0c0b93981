#!/bin/sh
# Run from the payload CD: partition the blank virtio disk (/dev/vda), make a FAT
# file system on it, copy a file from the CD onto it and read it back after a remount.
set -e
trap '[ "$done" = 1 ] || echo "DISK-FAILED (see above)"' EXIT
cd "$(dirname "$0")"
printf 'o\nn\np\n1\n\n\nt\nc\nw\n' | fdisk /dev/vda >/dev/null 2>&1 || true
[ -b /dev/vda1 ] || partprobe /dev/vda
mkdosfs /dev/vda1 >/dev/null
mkdir -p /target
mount -t vfat /dev/vda1 /target
cp data/message.txt /target/message.txt
umount /target
mount -t vfat /dev/vda1 /target
echo "DISK-READY fs=vfat table=$(fdisk -l /dev/vda | grep -c '^/dev/vda1 ') sum=$(md5sum < /target/message.txt | cut -c1-8)"
umount /target
done=1
