#!/usr/bin/env bash
# An emulated Raspberry Pi check: build an arm64 Debian Bookworm root file system with debootstrap
# and qemu-user-static, install the deployment bundle in it with install.sh --no-systemd (as root,
# in a chroot), then run 60 frames of the bundled sample clip and print the end of the event log.
# Slow (qemu emulates every arm64 instruction: count on tens of minutes the first time), needs root
# and the host packages debootstrap, qemu-user-static and binfmt-support. Not part of CI; see
# docs/pi-sim.md. The root file system is kept and reused; delete DIR to start over (nothing is
# mounted in it once this script has exited).
#
#   deploy/pi_sim.sh [DIR]               DIR defaults to build/pi-sim
#   MODEL=other.tflite deploy/pi_sim.sh  ship another model (its sidecar .json next to it)
#   MIRROR=... SUITE=...                 Debian mirror and release (default deb.debian.org, bookworm)
#   EXTRA_CA_CERTS=a.crt:b.crt ...       CA certificates the chroot must trust as well (a host behind
#                                        a TLS-intercepting proxy); pip in the chroot then uses them
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SIM=$(mkdir -p "${1:-build/pi-sim}" && cd "${1:-build/pi-sim}" && pwd)
ROOTFS="$SIM/rootfs"
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
IN_BUNDLE=/root/fer-edge-bundle # where the bundle goes inside the chroot
IN_APP=/root/fer-edge
IN_LOG=$IN_APP/logs/pi-sim.jsonl
CHROOT_ENV=(env -i HOME=/root USER=root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
START=$SECONDS

stage() {
    printf '\n==> [%s, +%ss] %s\n' "$(date +%H:%M:%S)" $((SECONDS - START)) "$*"
}
fail() {
    echo "pi_sim.sh: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot and mounts)"
for tool in debootstrap qemu-aarch64-static update-binfmts chroot; do
    command -v "$tool" >/dev/null || fail "$tool is missing: apt-get install -y debootstrap qemu-user-static binfmt-support"
done

stage "binfmt_misc: arm64 binaries through qemu-aarch64-static"
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 || update-binfmts --import qemu-aarch64
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || fail "qemu-aarch64 is not registered with binfmt_misc"

if [ -e "$ROOTFS/.pi-sim-ready" ]; then
    stage "reusing the root file system in $ROOTFS"
else
    if [ ! -x "$ROOTFS/debootstrap/debootstrap" ]; then
        stage "debootstrap, first stage (downloads and unpacks; runs natively)"
        mkdir -p "$ROOTFS"
        debootstrap --arch=arm64 --foreign --variant=minbase --include=ca-certificates "$SUITE" "$ROOTFS" "$MIRROR"
    fi
    stage "debootstrap, second stage (configures the packages; runs under qemu)"
    cp /usr/bin/qemu-aarch64-static "$ROOTFS/usr/bin/"
    chroot "$ROOTFS" /debootstrap/debootstrap --second-stage
    touch "$ROOTFS/.pi-sim-ready"
fi
chroot "$ROOTFS" uname -m | grep -qx aarch64 || fail "the chroot does not run as aarch64"

# shellcheck disable=SC2317  # called by the EXIT trap
unmount_all() {
    for m in dev/pts dev proc; do
        if mountpoint -q "$ROOTFS/$m"; then umount "$ROOTFS/$m" || umount -l "$ROOTFS/$m"; fi
    done
}
trap unmount_all EXIT
# No /sys: with the host's /sys and /proc both visible, the interpreter's CPU probe (cpuinfo, for
# XNNPACK) reads the x86 host's processor lists, and allocate_tensors() segfaults under qemu-user.
mount -t proc proc "$ROOTFS/proc"
mount --bind /dev "$ROOTFS/dev"
mount --bind /dev/pts "$ROOTFS/dev/pts"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
if [ -n "${EXTRA_CA_CERTS:-}" ]; then
    IFS=: read -r -a extra_certs <<<"$EXTRA_CA_CERTS"
    for i in "${!extra_certs[@]}"; do
        cp "${extra_certs[$i]}" "$ROOTFS/usr/local/share/ca-certificates/pi-sim-extra-$i.crt"
    done
    chroot "$ROOTFS" "${CHROOT_ENV[@]}" update-ca-certificates
    CHROOT_ENV+=(PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
fi

stage "bundle (deploy/deploy.sh --bundle-only) into $IN_BUNDLE"
bash deploy/deploy.sh --bundle-only
rm -rf "${ROOTFS:?}$IN_BUNDLE"
cp -r build/bundle "$ROOTFS$IN_BUNDLE"
cp edge/assets/sample.mp4 "$ROOTFS$IN_BUNDLE/"

stage "install.sh --no-systemd in the chroot (apt, venv, pip)"
chroot "$ROOTFS" "${CHROOT_ENV[@]}" bash "$IN_BUNDLE/install.sh" --no-systemd

stage "python -m edge run: 60 frames of the sample clip"
rm -f "$ROOTFS$IN_LOG"
rc=0
chroot "$ROOTFS" "${CHROOT_ENV[@]}" "$IN_APP/venv/bin/python" -m edge run --config "$IN_APP/edge.toml" \
    --source "$IN_BUNDLE/sample.mp4" --max-frames 60 --log "$IN_LOG" || rc=$?
echo "edge run exited with $rc"

stage "end of the event log $IN_LOG"
if [ -f "$ROOTFS$IN_LOG" ]; then
    wc -l <"$ROOTFS$IN_LOG" | xargs echo "events:"
    tail -n 15 "$ROOTFS$IN_LOG"
else
    echo "(no log written)"
fi
stage "done"
exit "$rc"
