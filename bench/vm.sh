#!/bin/sh
# bench/vm.sh FEDWALL [SECTIONS] - bench/run.sh on Debian 12's own kernel.
#
# fedwall targets Debian 12 (kernel 6.1); the machine it is developed on
# may run another kernel, and nf_tables' costs moved between them (from
# 6.x on, a commit to an interval set rebuilds the set: tens of ms for
# one element of 100k, see docs/BENCHMARKS.md).  This boots Debian 12's
# linux-image-6.1 (fetched with apt-get download) in qemu, with this
# machine's root file system as a read-only 9p lower layer under a tmpfs
# overlay, and runs `BENCH_ONLY=SECTIONS bench/run.sh FEDWALL` inside it.
# The report goes to stdout as run.sh writes it.
#
# Under TCG (pure emulation: ~15x slower, and unevenly so, see
# docs/BENCHMARKS.md: compare kernel commits with kernel commits, not
# the bench's ratios with a native run's), or under KVM with
# VM_ACCEL=kvm where /dev/kvm can boot a guest (a nested one here hangs
# silently in the kernel's decompressor).
#
# Needs root, and Debian's qemu-system-x86, busybox-static, kmod and cpio
# (tools/deps.sh vm).  Scratch in $VM_DIR (default /var/tmp/fedwall-vm),
# kept between runs so that the kernel is fetched once.
set -eu

[ $# -ge 1 ] && [ -x "$1" ] || { echo "usage: bench/vm.sh path/to/fedwall [SECTIONS]" >&2; exit 2; }
FEDWALL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SECTIONS=${2:-solo real}
SRC=$(cd "$(dirname "$0")/.." && pwd)
D=${VM_DIR:-/var/tmp/fedwall-vm}
PKG=${VM_KERNEL:-linux-image-6.1.0-47-amd64-unsigned}
MODS="virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay"

for c in qemu-system-x86_64 busybox depmod cpio; do
	command -v $c >/dev/null 2>&1 || { echo "bench/vm.sh: needs $c (tools/deps.sh vm)" >&2; exit 1; }
done
mkdir -p "$D/out"

# The kernel and its modules, unpacked, with modules.dep for modprobe.
if [ ! -d "$D/k/boot" ]; then
	(cd "$D" && apt-get download "$PKG" >/dev/null)
	dpkg -x "$D"/"$PKG"_*.deb "$D/k"
fi
KV=$(ls "$D/k/lib/modules")
[ -f "$D/k/lib/modules/$KV/modules.dep" ] || depmod -b "$D/k" "$KV"

# The initramfs: busybox, the modules a 9p root needs, and an init that
# mounts this machine's / under a tmpfs overlay, the guest's modules over
# /lib/modules, and $D/out read-write at /tmp/out; then runs job.sh there.
rm -rf "$D/ird" && mkdir -p "$D/ird/bin" "$D/ird/mods" "$D/ird/proc" "$D/ird/sys" "$D/ird/dev" \
	"$D/ird/host" "$D/ird/lower" "$D/ird/rw"
cp "$(command -v busybox)" "$D/ird/bin/busybox"
for a in sh mount insmod mkdir switch_root echo cat poweroff; do ln -sf busybox "$D/ird/bin/$a"; done
for m in $MODS; do cp "$(find "$D/k/lib/modules/$KV" -name "$m.ko*")" "$D/ird/mods/"; done
cat >"$D/ird/init" <<EOF
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $MODS; do insmod /mods/\$m.ko*; done
o=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o \$o,ro hostroot /lower || poweroff -f
mount -t tmpfs tmpfs /rw; mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /host
mkdir -p /host/lib/modules/$KV
mount -t 9p -o \$o,ro vmmods /host/lib/modules/$KV
mount -t tmpfs tmpfs /host/tmp; mkdir -p /host/tmp/out
mount -t 9p -o \$o vmout /host/tmp/out
mount -t tmpfs tmpfs /host/run; mkdir -p /host/run/netns
mount -t proc proc /host/proc; mount -t sysfs sys /host/sys; mount -t devtmpfs dev /host/dev
exec switch_root /host /bin/sh -c 'export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root;
	sh /tmp/out/job.sh >/tmp/out/report 2>/tmp/out/log; sync; echo o >/proc/sysrq-trigger; sleep 10'
EOF
chmod 755 "$D/ird/init"
(cd "$D/ird" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$D/initrd.gz")

# fedwall and the bench's helpers copied in: the guest sees them at
# /tmp/out, frozen for the run whatever happens to the build meanwhile.
rm -rf "$D/out/bin" && mkdir -p "$D/out/bin"
cp "$FEDWALL" "$D/out/bin/fedwall"
[ -d "$(dirname "$FEDWALL")/bench" ] && cp -r "$(dirname "$FEDWALL")/bench" "$D/out/bin/"
cat >"$D/out/job.sh" <<EOF
cd "$SRC" && BENCH_1M=0 BENCH_QUICK=${BENCH_QUICK:-0} BENCH_REPS=${BENCH_REPS:-3} \\
	BENCH_ONLY="$SECTIONS" sh bench/run.sh /tmp/out/bin/fedwall
EOF
rm -f "$D/out/report" "$D/out/log"

accel="-accel tcg,thread=multi -cpu max"
[ "${VM_ACCEL:-tcg}" = kvm ] && accel="-enable-kvm -cpu host,-arch-capabilities"
fs() { echo "-fsdev local,id=$1,path=$2,security_model=none,multidevs=remap$3 -device virtio-9p-pci,fsdev=$1,mount_tag=$4"; }
# shellcheck disable=SC2046
timeout "${VM_TIMEOUT:-7200}" qemu-system-x86_64 $accel -smp 2 -m "${VM_MEM:-8192}" \
	-nographic -no-reboot -kernel "$D/k/boot/vmlinuz-$KV" -initrd "$D/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1" \
	$(fs r / ,readonly=on hostroot) $(fs m "$D/k/lib/modules/$KV" ,readonly=on vmmods) \
	$(fs o "$D/out" "" vmout) >"$D/console.log" 2>&1 || :
[ -s "$D/out/report" ] || { echo "bench/vm.sh: no report; see $D/console.log and $D/out/log" >&2; exit 1; }
cat "$D/out/report"
