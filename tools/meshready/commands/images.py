"""`meshready images`: build, smoke-run, push and pin the container images; check that the
production targets use nothing but digests."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from meshready import render
from meshready.commands.common import select_targets
from meshready.config import RepoConfig, load_config
from meshready.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, MeshreadyError
from meshready.git import repository_state
from meshready.images import build as images
from meshready.images import pin
from meshready.render import hydrate
from meshready.render import kustomize as kz

DESCRIPTION = """\
Build the images of this repository with docker (BuildKit), podman or buildah (the first
found; $BUILDER overrides), tagged REGISTRY/NAME:GIT_SHA[-dirty]. REGISTRY is --registry,
$REGISTRY, [tool.meshready.images].registry, or localhost/asm-ready."""

DEFAULT_RECORD = "build/images.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "images",
        help="build, smoke-run, push and pin the container images",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--repo", type=Path, metavar="DIR", help="repository root (default: found from cwd)"
    )
    actions = parser.add_subparsers(dest="images_command", required=True, metavar="ACTION")

    build = actions.add_parser("build", help="build every image (and smoke-run, push, pin)")
    build.add_argument("--registry", help="registry and path the tags start with")
    build.add_argument(
        "--base-image",
        metavar="REF",
        help="passed as the BASE_IMAGE build argument (default: $BASE_IMAGE, else the "
        "Dockerfiles' own default)",
    )
    build.add_argument(
        "--image",
        action="append",
        metavar="NAME",
        help="build only this image (repeatable; default: all)",
    )
    build.add_argument("--smoke", action="store_true", help="run the built images and check them")
    build.add_argument("--push", action="store_true", help="push and record registry digests")
    build.add_argument(
        "--pin",
        metavar="OVERLAY",
        type=Path,
        help="after --push, pin the digests into OVERLAY's kustomization and re-render",
    )
    build.add_argument(
        "--record",
        type=Path,
        default=Path(DEFAULT_RECORD),
        metavar="FILE",
        help=f"where to write tags, sizes, times and digests as JSON (default: {DEFAULT_RECORD})",
    )
    build.set_defaults(run=run_build)

    pin_parser = actions.add_parser(
        "pin", help="pin NAME=REPOSITORY@sha256:... into an overlay and re-render"
    )
    pin_parser.add_argument("overlay", type=Path, metavar="OVERLAY")
    pin_parser.add_argument("pins", nargs="+", metavar="NAME=REPOSITORY@sha256:DIGEST")
    pin_parser.add_argument(
        "--no-render", action="store_true", help="edit the kustomization only; do not re-hydrate"
    )
    pin_parser.set_defaults(run=run_pin)

    check = actions.add_parser(
        "check-pinned", help="exit 1 unless every image in the production targets is a digest"
    )
    check.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="targets to check (default: [tool.meshready].production_targets)",
    )
    check.add_argument("--timeout", type=float, metavar="SECONDS", help="per-target build timeout")
    check.set_defaults(run=run_check_pinned)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def run_build(args: argparse.Namespace) -> int:
    if args.pin is not None and not args.push:
        raise MeshreadyError(
            "--pin needs --push: only a registry digest can be pinned (or use "
            "`meshready images pin OVERLAY NAME=REPOSITORY@sha256:...`)"
        )
    config = load_config(args.repo)
    table = images.images_table(config.raw)
    specs = images.image_specs(table)
    if args.image:
        unknown = sorted(set(args.image) - {s.name for s in specs})
        if unknown:
            known = ", ".join(s.name for s in specs)
            raise MeshreadyError(f"unknown image {', '.join(unknown)} (known: {known})")
        specs = [s for s in specs if s.name in args.image]
    if args.pin is not None:
        pin.kustomization_file(_resolve(config.root, args.pin))  # fail before a long build
    registry = (
        args.registry
        or os.environ.get("REGISTRY")
        or str(table.get("registry", images.DEFAULT_REGISTRY))
    )
    builder = images.detect_builder()
    print(f"using {builder.describe()}", file=sys.stderr)
    state = repository_state(config.root)
    created = images.created_epoch(state, os.environ)
    labels = images.oci_labels(state, created)
    build_args = {"SOURCE_DATE_EPOCH": str(created)}
    base_image = args.base_image or os.environ.get("BASE_IMAGE")
    if base_image:
        build_args["BASE_IMAGE"] = base_image
    if state.dirty:
        print("the work tree has uncommitted changes: tags end in -dirty", file=sys.stderr)
    if not state.source:
        print(
            "no org.opencontainers.image.source label: the origin remote is not a repository URL "
            "(git remote set-url origin https://... to add it)",
            file=sys.stderr,
        )

    built: dict[str, images.BuiltImage] = {}
    for spec in specs:
        tag = images.image_tag(registry, spec.name, state.sha, state.dirty)
        print(f"building {spec.name} from {spec.context} as {tag}", file=sys.stderr)
        image = images.build_image(builder, config.root, spec, tag, labels, build_args)
        built[spec.name] = image
        print(f"built {tag} in {image.seconds:.1f}s, {_mb(image.size_bytes)}")

    if args.smoke:
        missing = [n for n in ("helloserver", "loadgen") if n not in built]
        if missing:
            raise MeshreadyError(f"--smoke runs helloserver and loadgen; not built: {missing}")
        report = images.smoke_run(builder, built["helloserver"].tag, built["loadgen"].tag)
        print(
            f"smoke: helloserver answered {report.root_body!r} and /readyz on 127.0.0.1:"
            f"{report.port}; loadgen completed {report.requests_completed} request(s) "
            f"to {report.loadgen_url}"
        )

    if args.push:
        with tempfile.TemporaryDirectory(prefix="meshready-push-") as tmp:
            for image in built.values():
                image.digest_ref = images.push_image(builder, image.tag, Path(tmp))
                print(f"pushed {image.digest_ref}")

    record = args.record if args.record.is_absolute() else config.root / args.record
    images.write_build_record(record, builder, state, labels, built)
    total = sum(i.seconds for i in built.values())
    print(
        "images: "
        + ", ".join(f"{i.name} {_mb(i.size_bytes)} ({i.seconds:.1f}s)" for i in built.values())
        + f"; build time {total:.1f}s"
    )
    if args.pin is not None:
        pins = [pin.Pin(i.name, *pin.split_reference(i.digest_ref)) for i in built.values()]
        return _pin_and_render(config, args.pin, pins, rerender=True)
    return EXIT_OK


def _resolve(root: Path, overlay: Path) -> Path:
    path = overlay if overlay.is_absolute() else Path.cwd() / overlay
    if not path.is_dir():
        path = root / overlay
    if not path.is_dir():
        raise MeshreadyError(f"{overlay}: no such overlay directory")
    return path.resolve()


def _pin_and_render(config: RepoConfig, overlay: Path, pins: list[pin.Pin], rerender: bool) -> int:
    directory = _resolve(config.root, overlay)
    written = pin.pin_overlay(directory, pins)
    shown = _shown(written, config.root)
    for p in pins:
        print(f"{shown}: pinned {p.name} to {p.reference}")
    if not rerender:
        return EXIT_OK
    if not config.hydrate:
        print("no [tool.meshready.hydrate] table: nothing to re-render", file=sys.stderr)
        return EXIT_OK
    hydrate.check_destinations(config.root, {t: Path(d) for t, d in config.hydrate.items()})
    kustomize = kz.find_kustomize(memory_mib=config.render_memory_mib)
    results = render.render_targets(
        config.root, sorted(config.hydrate), kustomize, config.render_timeout
    )
    failed = 0
    for result in results:
        if not result.ok:
            failed += 1
            print(f"{result.target}: render failed: {result.error}", file=sys.stderr)
            continue
        out_dir = config.root / config.hydrate[result.target]
        report = hydrate.write(out_dir, hydrate.hydrated_files(result), config.root)
        print(
            f"{_shown(out_dir, config.root)}: re-rendered from {result.target} "
            f"({len(report.written)} written, {len(report.removed)} removed)"
        )
    return EXIT_FINDINGS if failed else EXIT_OK


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def run_pin(args: argparse.Namespace) -> int:
    pins = [pin.parse_pin(p) for p in args.pins]
    names = [p.name for p in pins]
    if len(set(names)) != len(names):
        raise MeshreadyError("each NAME may be pinned once", EXIT_USAGE)
    config = load_config(args.repo)
    return _pin_and_render(config, args.overlay, pins, rerender=not args.no_render)


def run_check_pinned(args: argparse.Namespace) -> int:
    config = load_config(args.repo)
    given = args.targets or [str(t) for t in config.raw.get("production_targets", [])]
    if not given:
        raise MeshreadyError(
            "no production targets: pass TARGET or set [tool.meshready].production_targets"
        )
    targets = select_targets(config, given)
    kustomize = kz.find_kustomize(memory_mib=config.render_memory_mib)
    results = render.render_targets(
        config.root, targets, kustomize, args.timeout or config.render_timeout
    )
    failed = 0
    unpinned: list[pin.UnpinnedImage] = []
    for result in results:
        if not result.ok:
            failed += 1
            print(f"{result.target}: render failed: {result.error}", file=sys.stderr)
            continue
        found = pin.unpinned_images(result.target, result.objects)
        unpinned += found
        if not found:
            count = sum(len(pin.container_images(o.obj)) for o in result.objects)
            print(f"{result.target}: all {count} container image(s) pinned by digest")
    for item in unpinned:
        origin = f" (from {item.origin})" if item.origin else ""
        print(
            f"{item.target}: {item.workload} container {item.container}: image {item.image} "
            f"is not pinned by digest{origin}"
        )
    if unpinned:
        print(
            "pin them: `nox -s build -- --push --pin OVERLAY` or "
            "`meshready images pin OVERLAY NAME=REPOSITORY@sha256:...`",
            file=sys.stderr,
        )
    return EXIT_FINDINGS if failed or unpinned else EXIT_OK
