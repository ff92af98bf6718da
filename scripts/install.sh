#!/usr/bin/env bash
# Install hyperward into ./.venv with Debian's Python 3.11 (Debian 12, as root).
#   bash scripts/install.sh          the tool
#   bash scripts/install.sh --test   the tool plus everything the test suite uses
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

# python3-libvirt: the libvirt API binding (Debian's build; the venv sees it through
# --system-site-packages). The tool works without a daemon; the binding lets it ask one.
# python3-apt: libapt's own version comparison (hyperward falls back to an exact port without it).
# python3-guestfs, libguestfs-tools, libguestfs-xfs: the appliance that reads guests' disks read-only
# (`guests scan`, `scan --guests`; LGPL-2.1+, an optional dependency seen through the same
# system site-packages); qemu-utils: qemu-img info for each image's format, chain and encryption;
# xfsprogs, lvm2, cryptsetup-bin: what the appliance uses for xfs, LVM and LUKS volumes.
# distro-info-data: Debian's and Ubuntu's release and end-of-life dates (HV-PATCH-071 reads the
# scanning host's copy, which the host's own updates keep current).
packages=(python3 python3-venv python3-pip python3-libvirt python3-apt python3-guestfs libguestfs-tools libguestfs-xfs qemu-utils xfsprogs lvm2 cryptsetup-bin distro-info-data)
# The tests use the real dpkg (version-order oracle), setpriv (run as an unprivileged user),
# script (a real terminal for colour output), and a real libvirt with QEMU (TCG guests), OVMF and
# swtpm, started by the test session itself. The monitor's live test boots Debian's own kernel
# (downloaded with apt-get download) with a static busybox, and delivers to a real Prometheus
# Alertmanager scraped by a real Prometheus, both started on loopback by the test. Headless
# Chromium screenshots the history page (tests/test_monitor_ux.py counts its alert-band pixels).
# The Windows guest test formats NTFS in the appliance (ntfs-3g's mkntfs) and writes its SOFTWARE
# hive with real hivex (hivexregedit, libwin-hivex-perl).
# virt-xml-validate (libvirt-clients) needs xmllint (libxml2-utils) to check fixture XML against libvirt's schemas.
# The ESXi tests build govmomi's vCenter simulator from Debian's Go sources (golang-go,
# golang-github-vmware-govmomi-dev; GOPATH mode, nothing downloaded) and make its certificates with openssl.
# The Prometheus textfile report is read by Debian's node exporter and scraped by Prometheus in
# tests/test_report_formats.py (both started on loopback by the test).
# The guest-disk tests build images with mkfs.ext4 -d (e2fsprogs), mkfs.vfat and mcopy (dosfstools,
# mtools), ssh-keygen (openssh-client), qemu-img, and LUKS2 with cryptsetup.
# tests/test_fleet.py runs Debian's PostgreSQL (initdb into a temporary directory, private socket, no TCP).
[ "$want_tests" = 1 ] && packages+=(e2fsprogs dosfstools mtools ntfs-3g libwin-hivex-perl openssh-client kmod dpkg util-linux bsdutils libvirt-daemon-system libvirt-clients dnsmasq-base qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools apt lz4 python3-rpm rpm openssh-server nftables iproute2 iptables restic borgbackup busybox-static prometheus prometheus-alertmanager prometheus-node-exporter systemd chromium libxml2-utils golang-go golang-github-vmware-govmomi-dev openssl postgresql)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install.sh: needs root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A venv made earlier without the system site-packages cannot see python3-libvirt: rebuild it.
if [ -f .venv/pyvenv.cfg ] && ! grep -q 'include-system-site-packages = true' .venv/pyvenv.cfg; then
  rm -rf .venv
fi
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$want_tests" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
if [ "$want_tests" = 1 ]; then
  # The kernel package the monitor's live test boots (cached; the test fetches it too if absent).
  cache=${HYPERWARD_TEST_CACHE:-/var/cache/hyperward-tests}
  kernel=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1)
  if [ -n "$kernel" ] && ! ls "$cache/${kernel}"_*.deb >/dev/null 2>&1; then
    [ -d /var/lib/apt/lists/partial ] && ls /var/lib/apt/lists/*Packages* >/dev/null 2>&1 || apt-get update -qq
    mkdir -p "$cache" && (cd "$cache" && apt-get download -qq "$kernel")
  fi
  # supermin builds the libguestfs appliance from a kernel in /boot and /lib/modules; a container
  # has neither, so the tests unpack the cached kernel package (tests/guests/appliance_env.py) and
  # supermin still needs /lib/modules to exist.
  [ -d /lib/modules ] || mkdir -p /lib/modules
fi
echo "hyperward installed: $(.venv/bin/hyperward --version)"
