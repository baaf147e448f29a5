#!/usr/bin/env bash
# Build the local Python base image the Dockerfiles take as BASE_IMAGE, from Debian
# packages only (Docker Hub is out of reach in CI): debootstrap a minbase bookworm root
# with python3 from the Debian mirror apt already uses, bring it up to date from Debian's
# security suite (bookworm-security) and bookworm-updates with `apt-get upgrade` inside
# the root, `docker import` it, and print `export BASE_IMAGE=...` and
# `export BASE_IMAGE_ID=sha256:...` (the imported image's id, also logged) for the caller
# to eval.
#
# The root filesystem tarball is cached under $ASM_READY_CACHE (default
# /var/cache/asm-ready), keyed by this script and the mirrors, for at most
# $ASM_READY_BASE_MAX_AGE_DAYS days (default 7); then it is built again, so that security
# updates published since reach the image. ASM_READY_BASE_REFRESH=1 rebuilds it now.
# Needs root (debootstrap chroots) and a running engine.
set -euo pipefail

SUITE=bookworm
# python3 is the runtime; ca-certificates and apt's sources stay so that a builder stage
# can `apt-get install` more (with --network host) while the runtime base stays minimal.
PACKAGES=python3,ca-certificates
IMAGE=${BASE_IMAGE_NAME:-localhost/asm-ready/python-base:bookworm}
CACHE_DIR=${ASM_READY_CACHE:-/var/cache/asm-ready}
MAX_AGE_DAYS=${ASM_READY_BASE_MAX_AGE_DAYS:-7}
DOCKER=${BUILDER:-docker}

log() { echo "base-image.sh: $*" >&2; }

# The first URI apt is configured with for suite $1 (deb822 or one-line style), else $2.
apt_uri() {
    local suite=$1 fallback=$2 uri=""
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        uri=$(awk '/^URIs:/{u=$2} /^Suites:/{ if ($0 ~ / '"$suite"'( |$)/ && u != "") {print u; exit} }' "$f")
        [[ -n $uri ]] && break
    done
    if [[ -z $uri ]]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -f $f ]] || continue
            uri=$(awk '$1=="deb" && $3=="'"$suite"'" {print $2; exit}' "$f")
            [[ -n $uri ]] && break
        done
    fi
    shopt -u nullglob
    echo "${uri:-$fallback}"
}

MIRROR=$(apt_uri "$SUITE" http://deb.debian.org/debian)
SECURITY_MIRROR=$(apt_uri "$SUITE-security" http://deb.debian.org/debian-security)
# Certificate authorities this machine adds to Debian's (a TLS-inspecting egress proxy's,
# say): a builder stage reaching PyPI through that proxy must trust them as the host does.
shopt -s nullglob
EXTRA_CAS=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob
KEY=$( (cat "$0" "${EXTRA_CAS[@]}"; echo "$MIRROR $SECURITY_MIRROR $SUITE $PACKAGES") | sha256sum | cut -c1-16)
TARBALL="$CACHE_DIR/python-base-$SUITE-$KEY.tar.gz"

# A cached tarball younger than MAX_AGE_DAYS, unless a rebuild is asked for.
fresh_tarball() {
    [[ -s $TARBALL && ${ASM_READY_BASE_REFRESH:-0} != 1 ]] &&
        [[ -n $(find "$TARBALL" -mtime "-$MAX_AGE_DAYS" -print) ]]
}

# Security updates at build time: debootstrap installs the packages of the release as
# published; bookworm-security and bookworm-updates carry the fixes since.
upgrade_root() {
    local root=$1 log_file=$2 before after upgraded
    # shellcheck disable=SC2016  # dpkg-query's own ${field} format, not the shell's
    local format='${Package}=${Version}\n'
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mount -t proc proc "$root/proc"
    before=$(chroot "$root" dpkg-query -W -f "$format" | sort)
    if ! chroot "$root" apt-get update -qq >"$log_file" 2>&1 ||
        ! chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq \
            -o Dpkg::Options::=--force-confold >>"$log_file" 2>&1; then
        tail -n 30 "$log_file" >&2
        return 1
    fi
    after=$(chroot "$root" dpkg-query -W -f "$format" | sort)
    umount "$root/proc"
    upgraded=$(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')
    log "apt-get upgrade from $SUITE-security and $SUITE-updates: ${upgraded:-nothing to upgrade}"
}

if ! fresh_tarball; then
    command -v debootstrap >/dev/null || { log "no debootstrap: apt-get install debootstrap"; exit 2; }
    mkdir -p "$CACHE_DIR"
    work=$(mktemp -d /tmp/asm-ready-rootfs.XXXXXX)
    root="$work/root"
    # /proc is mounted inside the root during the upgrade: unmount it before removing.
    trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
    log "debootstrap $SUITE from $MIRROR (cached afterwards as $TARBALL)"
    started=$SECONDS
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" \
        >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    # The apt sources of the machine that built it, the security suite included, for the
    # upgrade below and so that `apt-get update` works in a builder stage.
    {
        echo "deb $MIRROR $SUITE main"
        echo "deb $MIRROR $SUITE-updates main"
        echo "deb $SECURITY_MIRROR $SUITE-security main"
    } >"$root/etc/apt/sources.list"
    if ((${#EXTRA_CAS[@]})); then
        cp "${EXTRA_CAS[@]}" "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates >/dev/null 2>&1
    fi
    upgrade_root "$root" "$work/apt.log"
    # What a container never needs: downloaded .debs, package lists, docs, man pages, and
    # the build machine's resolver configuration (the engine provides its own).
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/var/log/* "$root"/tmp/* "${root:?}"/dev/* "$root"/etc/resolv.conf
    tar --numeric-owner --sort=name -C "$root" -czf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    log "root filesystem built in $((SECONDS - started))s: $(du -h "$TARBALL" | cut -f1)"
    # Older tarballs of this script are stale now.
    find "$CACHE_DIR" -name "python-base-$SUITE-*.tar.gz" ! -name "$(basename "$TARBALL")" -delete
else
    log "using cached $TARBALL (built $(date -u -r "$TARBALL" +%Y-%m-%dT%H:%MZ); rebuilt after $MAX_AGE_DAYS days)"
fi

started=$SECONDS
"$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$TARBALL" "$IMAGE" >/dev/null
"$DOCKER" run --rm --network host "$IMAGE" python3 -c 'import sys; print(sys.version.split()[0])' \
    | sed 's/^/base-image.sh: python /' >&2
image_id=$("$DOCKER" image inspect --format '{{.Id}}' "$IMAGE")
log "imported $IMAGE in $((SECONDS - started))s: image id $image_id, root filesystem sha256 $(sha256sum "$TARBALL" | cut -c1-64)"
echo "export BASE_IMAGE=$IMAGE"
echo "export BASE_IMAGE_ID=$image_id"
