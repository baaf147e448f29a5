#!/usr/bin/env bash
# Build the local Python base image the Dockerfiles take as BASE_IMAGE, from Debian
# packages only (Docker Hub is out of reach in CI): debootstrap a minbase bookworm root
# with python3 from the Debian mirror apt already uses, `docker import` it, and print
# `export BASE_IMAGE=...` for the caller to eval.
#
# The root filesystem tarball is cached under $ASM_READY_CACHE (default
# /var/cache/asm-ready), keyed by this script and the mirror, so later runs on the same
# machine only import it. Needs root (debootstrap chroots) and a running engine.
set -euo pipefail

SUITE=bookworm
# python3 is the runtime; ca-certificates and apt's sources stay so that a builder stage
# can `apt-get install` more (with --network host) while the runtime base stays minimal.
PACKAGES=python3,ca-certificates
IMAGE=${BASE_IMAGE_NAME:-localhost/asm-ready/python-base:bookworm}
CACHE_DIR=${ASM_READY_CACHE:-/var/cache/asm-ready}
DOCKER=${BUILDER:-docker}

log() { echo "base-image.sh: $*" >&2; }

# The first Debian (not security, not updates) URI apt is configured with, deb822 or
# one-line style; deb.debian.org when none is found.
debian_mirror() {
    local uri=""
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        uri=$(awk '/^URIs:/{u=$2} /^Suites:/{ if ($0 ~ / '"$SUITE"'( |$)/ && u != "") {print u; exit} }' "$f")
        [[ -n $uri ]] && break
    done
    if [[ -z $uri ]]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -f $f ]] || continue
            uri=$(awk '$1=="deb" && $3=="'"$SUITE"'" {print $2; exit}' "$f")
            [[ -n $uri ]] && break
        done
    fi
    shopt -u nullglob
    echo "${uri:-http://deb.debian.org/debian}"
}

MIRROR=$(debian_mirror)
# Certificate authorities this machine adds to Debian's (a TLS-inspecting egress proxy's,
# say): a builder stage reaching PyPI through that proxy must trust them as the host does.
shopt -s nullglob
EXTRA_CAS=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob
KEY=$( (cat "$0" "${EXTRA_CAS[@]}"; echo "$MIRROR $SUITE $PACKAGES") | sha256sum | cut -c1-16)
TARBALL="$CACHE_DIR/python-base-$SUITE-$KEY.tar.gz"

if [[ ! -s $TARBALL ]]; then
    command -v debootstrap >/dev/null || { log "no debootstrap: apt-get install debootstrap"; exit 2; }
    mkdir -p "$CACHE_DIR"
    work=$(mktemp -d /tmp/asm-ready-rootfs.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    log "debootstrap $SUITE from $MIRROR (cached afterwards as $TARBALL)"
    started=$SECONDS
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/root" "$MIRROR" \
        >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    root="$work/root"
    # What a container never needs: downloaded .debs, package lists, docs, man pages.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/var/log/* "$root"/tmp/* "$root"/dev/*
    # The apt sources of the machine that built it, so `apt-get update` works in a stage.
    echo "deb $MIRROR $SUITE main" >"$root/etc/apt/sources.list"
    if ((${#EXTRA_CAS[@]})); then
        cp "${EXTRA_CAS[@]}" "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates >/dev/null 2>&1
    fi
    tar --numeric-owner --sort=name -C "$root" -czf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    log "root filesystem built in $((SECONDS - started))s: $(du -h "$TARBALL" | cut -f1)"
    # Older tarballs of this script are stale now.
    find "$CACHE_DIR" -name "python-base-$SUITE-*.tar.gz" ! -name "$(basename "$TARBALL")" -delete
else
    log "using cached $TARBALL"
fi

started=$SECONDS
"$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$TARBALL" "$IMAGE" >/dev/null
"$DOCKER" run --rm --network host "$IMAGE" python3 -c 'import sys; print(sys.version.split()[0])' \
    | sed 's/^/base-image.sh: python /' >&2
log "imported $IMAGE in $((SECONDS - started))s"
echo "export BASE_IMAGE=$IMAGE"
