#!/bin/sh
# verify-units.sh: check every unit file in deploy/systemd/ with `systemd-analyze
# verify`, and the sandbox of unitdeck.service with `systemd-analyze security`.
#
# Usage: deploy/verify-units.sh            (from anywhere; needs systemd-analyze, no root)
#
# The units are checked as they ship, unchanged, inside a temporary root (--root=):
#   <tmp>/etc/systemd/system/        the units of deploy/systemd/, copied verbatim
#   <tmp>/usr/lib/systemd/system/    this machine's own units (dbus.service, targets, ...)
#                                    so that dependencies resolve
#   <tmp>/<path of each Exec*= command>
#                                    an empty executable stand-in, because verify
#                                    requires every command to exist and be executable
#                                    in the root, and the image's binaries (unitdeck,
#                                    code-server, difit, the entrypoint) are not here.
# Exit status: 0 when systemd-analyze printed nothing at all (no error, no warning)
# and unitdeck.service's offline exposure score is at most $UNITDECK_MAX_EXPOSURE
# (default 4.5); 1 otherwise.
set -eu

here=$(cd -- "$(dirname -- "$0")" && pwd)
units_dir=$here/systemd
max_exposure=${UNITDECK_MAX_EXPOSURE:-4.5}

command -v systemd-analyze >/dev/null || { echo "verify-units: systemd-analyze not found" >&2; exit 1; }

root=$(mktemp -d "${TMPDIR:-/tmp}/verify-units.XXXXXX")
trap 'rm -rf -- "$root"' EXIT INT TERM

mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd"
cp -- "$units_dir"/*.service "$root/etc/systemd/system/"
cp -R /usr/lib/systemd/system "$root/usr/lib/systemd/system"

# Stand-ins for the commands of Exec*= lines (the path is the first word after the
# optional "@-:+!" prefixes).
sed -n 's/^Exec[A-Za-z]*=[@:+!-]*\(\/[^ ]*\).*/\1/p' "$units_dir"/*.service | sort -u |
while IFS= read -r cmd; do
    mkdir -p "$root$(dirname -- "$cmd")"
    printf '#!/bin/sh\nexit 0\n' >"$root$cmd"
    chmod 0755 "$root$cmd"
done

units=
for f in "$units_dir"/*.service; do
    units="$units ${f##*/}"
done

status=0
echo "systemd-analyze $(systemd-analyze --version | head -n 1 | cut -d' ' -f2) verify --root=<tmp> --man=no --generators=no$units"
# shellcheck disable=SC2086 # $units is a list of plain unit names
out=$(systemd-analyze verify --root="$root" --man=no --generators=no $units 2>&1) || status=1
if [ -n "$out" ]; then
    printf '%s\n' "$out"
    status=1
fi

score_line=$(systemd-analyze security --offline=true --root="$root" --no-pager unitdeck.service 2>&1 | tail -n 1)
echo "unitdeck.service (offline):${score_line#*unitdeck.service:}"
score=$(printf '%s\n' "$score_line" | sed -n 's/.*unitdeck\.service: \([0-9.]*\).*/\1/p')
if [ -z "$score" ] || ! awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }'; then
    echo "verify-units: unitdeck.service exposure '${score}' is above $max_exposure" >&2
    status=1
fi

if [ "$status" -eq 0 ]; then
    echo "verify-units: OK"
else
    echo "verify-units: FAILED" >&2
fi
exit "$status"
