"""Pinning digests: a round-trip edit of a commented kustomization, then the real kustomize
and `meshready images check-pinned` on the result."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import run_cli, write_tree
from meshready.errors import MeshreadyError
from meshready.images import pin

HELLO = "sha256:" + "1" * 64
LOADGEN = "sha256:" + "2" * 64

COMMENTED = textwrap.dedent(
    """\
    # Production. Comments here and below must survive a pin.
    apiVersion: kustomize.config.k8s.io/v1beta1
    kind: Kustomization
    namespace: hello  # the app's namespace
    resources:
    - ../../base/app
    # `nox -s build --pin` replaces newTag with the pushed digest.
    images:
    - name: helloserver  # the name the base uses
      newName: localhost/asm-ready/helloserver
      newTag: v0.0.1  # replaced by a digest
    # loadgen has no newName yet
    - name: loadgen
      newTag: v0.0.1
    labels:
    - pairs: {version: v1}
    """
)

PINS = [
    pin.Pin("helloserver", "gcr.io/my-project/asm-ready/helloserver", HELLO),
    pin.Pin("loadgen", "gcr.io/my-project/asm-ready/loadgen", LOADGEN),
]


def test_pin_keeps_comments_order_and_style(snapshot):
    pinned = pin.pin_text(COMMENTED, PINS)
    assert pinned == snapshot
    # Every line but the image entries is byte-identical.
    untouched = [
        line for line in COMMENTED.splitlines() if "newTag" not in line and "newName" not in line
    ]
    pinned_lines = pinned.splitlines()
    for line in untouched:
        assert line in pinned_lines
    data = yaml.safe_load(pinned)
    assert data["images"] == [
        {"name": "helloserver", "newName": PINS[0].new_name, "digest": HELLO},
        {"name": "loadgen", "newName": PINS[1].new_name, "digest": LOADGEN},
    ]
    assert list(data) == ["apiVersion", "kind", "namespace", "resources", "images", "labels"]


def test_pinning_twice_changes_nothing_more():
    once = pin.pin_text(COMMENTED, PINS)
    assert pin.pin_text(once, PINS) == once
    newer = pin.Pin("helloserver", PINS[0].new_name, "sha256:" + "3" * 64)
    assert pin.pin_text(once, [newer]) == once.replace(HELLO, newer.digest)


def test_indented_sequences_stay_indented_and_missing_entries_are_added():
    text = "resources:\n  - app.yaml\nimages:\n  - name: other\n    newTag: v2\n"
    assert pin.pin_text(text, PINS[:1]) == (
        "resources:\n  - app.yaml\nimages:\n  - name: other\n    newTag: v2\n"
        f"  - name: helloserver\n    newName: {PINS[0].new_name}\n    digest: {HELLO}\n"
    )
    assert pin.pin_text("resources: [a.yaml]\n", PINS[:1]).endswith(
        f"images:\n- name: helloserver\n  newName: {PINS[0].new_name}\n  digest: {HELLO}\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("images: {name: x}\n", "`images:` is not a list"),
        ("- a\n- b\n", "not a kustomization"),
        ("images: [\n", "not valid YAML"),
    ],
)
def test_bad_kustomizations_are_one_line_errors(text: str, message: str):
    with pytest.raises(MeshreadyError, match=message) as err:
        pin.pin_text(text, PINS)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        (f"helloserver=gcr.io/p/r/helloserver@{HELLO}", ("helloserver", "gcr.io/p/r/helloserver")),
        (f"h=127.0.0.1:5000/a/h:abc-dirty@{HELLO}", ("h", "127.0.0.1:5000/a/h")),
        (
            f"h=europe-west1-docker.pkg.dev/p/r/h:v1@{HELLO}",
            ("h", "europe-west1-docker.pkg.dev/p/r/h"),
        ),
    ],
)
def test_pin_arguments_drop_the_tag_and_keep_a_registry_port(argument, expected):
    parsed = pin.parse_pin(argument)
    assert (parsed.name, parsed.new_name, parsed.digest) == (*expected, HELLO)


@pytest.mark.parametrize(
    "argument", ["helloserver", "=r@" + HELLO, "h=r:v1", "h=r@sha256:short", f"h=@{HELLO}"]
)
def test_bad_pin_arguments_are_usage_errors(argument: str):
    with pytest.raises(MeshreadyError) as err:
        pin.parse_pin(argument)
    assert err.value.exit_code == 2


def test_workload_images_are_found_in_every_pod_template_shape():
    container = {"containers": [{"name": "a", "image": "x"}], "initContainers": [{"name": "i", "image": "y"}]}  # fmt: skip
    cron = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": container}}}}}
    assert pin.container_images(cron) == [("i", "y"), ("a", "x")]
    assert pin.container_images({"kind": "Pod", "spec": container}) == [("i", "y"), ("a", "x")]
    deploy = {"kind": "Deployment", "spec": {"template": {"spec": container}}}
    assert pin.container_images(deploy) == [("i", "y"), ("a", "x")]
    assert pin.container_images({"kind": "Service", "spec": {"ports": []}}) == []
    assert pin.is_pinned(f"r/x@{HELLO}")
    assert pin.is_pinned(f"r/x:v1@{HELLO}")
    assert not pin.is_pinned("r/x:v1")


@pytest.fixture
def images_repo(tmp_path: Path) -> Path:
    """An overlay using two images, hydrated into clusters/prod, with a commented
    kustomization to pin."""
    return write_tree(
        tmp_path,
        {
            "pyproject.toml": """
                [tool.meshready]
                target_roots = ["overlays"]
                production_targets = ["overlays/prod"]
                [tool.meshready.hydrate]
                "overlays/prod" = "clusters/prod"
            """,
            "base/app/kustomization.yaml": "resources:\n- deployment.yaml\n",
            "base/app/deployment.yaml": """
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: web
                spec:
                  selector:
                    matchLabels: {app: web}
                  template:
                    metadata:
                      labels: {app: web}
                    spec:
                      containers:
                      - name: main
                        image: helloserver
                      - name: load
                        image: loadgen
            """,
            "overlays/prod/kustomization.yaml": COMMENTED,
        },
    )


def test_cli_pins_an_overlay_rehydrates_and_check_pinned_turns_green(images_repo: Path):
    before = run_cli("images", "check-pinned", cwd=images_repo)
    assert before.returncode == 1
    assert (
        "overlays/prod: Deployment/hello/web container main: image "
        "localhost/asm-ready/helloserver:v0.0.1 is not pinned by digest "
        "(from base/app/deployment.yaml)"
    ) in before.stdout
    assert "container load: image loadgen:v0.0.1 is not pinned" in before.stdout

    refs = [f"{p.name}={p.new_name}:abc123@{p.digest}" for p in PINS]
    proc = run_cli("images", "pin", "overlays/prod", *refs, cwd=images_repo)
    assert proc.returncode == 0, proc.stderr
    assert "overlays/prod/kustomization.yaml: pinned helloserver to gcr.io" in proc.stdout
    assert "clusters/prod: re-rendered from overlays/prod" in proc.stdout
    assert (images_repo / "overlays/prod/kustomization.yaml").read_text() == pin.pin_text(
        COMMENTED, PINS
    )
    hydrated = yaml.safe_load((images_repo / "clusters/prod/deployment_hello_web.yaml").read_text())
    assert [c["image"] for c in hydrated["spec"]["template"]["spec"]["containers"]] == [
        f"gcr.io/my-project/asm-ready/helloserver@{HELLO}",
        f"gcr.io/my-project/asm-ready/loadgen@{LOADGEN}",
    ]

    after = run_cli("images", "check-pinned", cwd=images_repo)
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout == "overlays/prod: all 2 container image(s) pinned by digest\n"


def test_cli_pin_rejects_bad_input_in_one_line(images_repo: Path):
    proc = run_cli("images", "pin", "overlays/prod", "helloserver=latest", cwd=images_repo)
    assert proc.returncode == 2
    assert proc.stderr.startswith("meshready: error: 'latest' is not REPOSITORY@sha256")
    proc = run_cli("images", "pin", "overlays/nope", f"h=r@{HELLO}", cwd=images_repo)
    assert proc.returncode == 2
    assert "overlays/nope: no such overlay directory" in proc.stderr
    text_before = (images_repo / "overlays/prod/kustomization.yaml").read_text()
    assert text_before == COMMENTED


# ---------------------------------------------------------------- byte-exact round trips on disk

SIDECAR = pin.Pin("sidecar", "gcr.io/my-project/asm-ready/sidecar", "sha256:" + "4" * 64)

# CRLF line endings, a differently indented block per list, quoting of every kind, a flow
# entry, comments between entries and an end-of-file comment after a blank line.
MESSY = (
    "# Production overlay.\r\n"
    "apiVersion: kustomize.config.k8s.io/v1beta1\r\n"
    "kind: Kustomization\r\n"
    "resources:\r\n"
    "    - ../../base/app   # four spaces before the dash\r\n"
    "namespace: 'hello'\r\n"
    "images:\r\n"
    "  - name: helloserver  # the base's name\r\n"
    '    newName: "localhost/asm-ready/helloserver"\r\n'
    "    newTag: 'v0.0.1'    # a tag, for now\r\n"
    "  # loadgen is written in flow style\r\n"
    "  - {name: loadgen, newTag: v1}\r\n"
    "  - name: other\r\n"
    '    newTag: "2.0"\r\n'
    "labels:\r\n"
    "-   pairs:\r\n"
    "        tier: web\r\n"
    "    includeSelectors: false\r\n"
    "\r\n"
    "# End of file: this comment stays last.\r\n"
)

MESSY_PINNED = (
    "# Production overlay.\r\n"
    "apiVersion: kustomize.config.k8s.io/v1beta1\r\n"
    "kind: Kustomization\r\n"
    "resources:\r\n"
    "    - ../../base/app   # four spaces before the dash\r\n"
    "namespace: 'hello'\r\n"
    "images:\r\n"
    "  - name: helloserver  # the base's name\r\n"
    f'    newName: "{PINS[0].new_name}"\r\n'
    f"    digest: '{HELLO}'    # a tag, for now\r\n"
    "  # loadgen is written in flow style\r\n"
    f"  - {{name: loadgen, newName: {PINS[1].new_name}, digest: {LOADGEN}}}\r\n"
    "  - name: other\r\n"
    '    newTag: "2.0"\r\n'
    "  - name: sidecar\r\n"
    f"    newName: {SIDECAR.new_name}\r\n"
    f"    digest: {SIDECAR.digest}\r\n"
    "labels:\r\n"
    "-   pairs:\r\n"
    "        tier: web\r\n"
    "    includeSelectors: false\r\n"
    "\r\n"
    "# End of file: this comment stays last.\r\n"
)


def _pin_args(*pins: pin.Pin) -> list[str]:
    return [f"{p.name}={p.new_name}@{p.digest}" for p in pins]


def test_a_pin_on_disk_changes_only_the_pinned_lines_crlf_indentation_and_comments_kept(
    images_repo: Path,
):
    path = images_repo / "overlays/prod/kustomization.yaml"
    path.write_bytes(MESSY.encode())
    proc = run_cli("images", "pin", "overlays/prod", *_pin_args(*PINS, SIDECAR), cwd=images_repo)
    assert proc.returncode == 0, proc.stderr
    assert path.read_bytes() == MESSY_PINNED.encode()
    # The same claim, stated as the brief does: minus the pinned lines, the bytes are equal.
    pinned_words = ("newName:", "newTag:", "digest:", "name: loadgen", "name: sidecar")

    def unpinned(text: str) -> list[str]:
        return [line for line in text.split("\r\n") if not any(w in line for w in pinned_words)]

    assert unpinned(path.read_bytes().decode()) == unpinned(MESSY)
    # The real kustomize took the edited file: the hydrated Deployment runs the digests.
    hydrated = yaml.safe_load((images_repo / "clusters/prod/deployment_hello_web.yaml").read_text())
    assert [c["image"] for c in hydrated["spec"]["template"]["spec"]["containers"]] == [
        f"{PINS[0].new_name}@{HELLO}",
        f"{PINS[1].new_name}@{LOADGEN}",
    ]
    # Pinning again is a no-op on the bytes.
    again = run_cli(
        "images", "pin", "--no-render", "overlays/prod", *_pin_args(*PINS), cwd=images_repo
    )
    assert again.returncode == 0, again.stderr
    assert path.read_bytes() == MESSY_PINNED.encode()


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "resources:\n  - a.yaml\n\n# trailing comment\n",
            "resources:\n  - a.yaml\nimages:\n  - name: sidecar\n"
            f"    newName: {SIDECAR.new_name}\n    digest: {SIDECAR.digest}\n\n# trailing comment\n",
            id="no-images-key-end-of-file-comment-stays-last",
        ),
        pytest.param(
            "resources:\n- a.yaml",
            f"resources:\n- a.yaml\nimages:\n- name: sidecar\n  newName: {SIDECAR.new_name}\n"
            f"  digest: {SIDECAR.digest}\n",
            id="no-final-newline",
        ),
        pytest.param(
            "images: []  # none yet\nresources:\n- a.yaml\n",
            f"images: [{{name: sidecar, newName: {SIDECAR.new_name}, digest: {SIDECAR.digest}}}]"
            "  # none yet\nresources:\n- a.yaml\n",
            id="empty-flow-list",
        ),
        pytest.param(
            "images:\nresources:\n  - a.yaml\n",
            f"images:\n  - name: sidecar\n    newName: {SIDECAR.new_name}\n"
            f"    digest: {SIDECAR.digest}\nresources:\n  - a.yaml\n",
            id="null-images",
        ),
        pytest.param(
            "images:\n- name: sidecar\n  newTag: v1 # old\n  digest: sha256:" + "0" * 64 + "\n"
            "  newName: x # keep\n",
            f"images:\n- name: sidecar\n  digest: {SIDECAR.digest}\n"
            f"  newName: {SIDECAR.new_name} # keep\n",
            id="newtag-beside-a-digest-goes-with-its-line",
        ),
        pytest.param(
            "images:\n- newTag: v1\n  name: sidecar\n",
            f"images:\n- digest: {SIDECAR.digest}\n  name: sidecar\n  newName: {SIDECAR.new_name}\n",
            id="newtag-first-becomes-the-digest-in-its-place",
        ),
    ],
)
def test_pin_text_is_byte_exact_in_every_layout(before: str, after: str):
    assert pin.pin_text(before, [SIDECAR]) == after


def test_a_block_scalar_tag_becomes_a_plain_digest_that_still_ends_its_line():
    before = "images:\n- name: sidecar\n  newTag: |\n    v1\nresources: [a.yaml]\n"
    assert pin.pin_text(before, [SIDECAR]) == (
        f"images:\n- name: sidecar\n  newName: {SIDECAR.new_name}\n  digest: {SIDECAR.digest}\n"
        "resources: [a.yaml]\n"
    )


def test_an_entry_shared_through_an_anchor_is_refused_not_edited_in_two_places():
    text = "shared: &img {name: sidecar, newTag: v1}\nimages:\n- *img\n"
    with pytest.raises(MeshreadyError, match="anchor's value used elsewhere too") as err:
        pin.pin_text(text, [SIDECAR])
    assert err.value.exit_code == 1


def test_the_first_key_on_the_dash_line_can_be_the_removed_newtag():
    before = "images:\n- newTag: v1\n  name: sidecar\n  digest: sha256:" + "0" * 64 + "\n"
    assert pin.pin_text(before, [SIDECAR]) == (
        f"images:\n- name: sidecar\n  newName: {SIDECAR.new_name}\n  digest: {SIDECAR.digest}\n"
    )


@pytest.mark.parametrize(
    ("images", "message"),
    [
        pytest.param(
            "images:\n- helloserver\n- name: loadgen\n  newTag: v1\n",
            ":2: images entry 'helloserver' is not a mapping (name:, newName:, digest:); "
            "fix these entries first",
            id="plain-string-entry",
        ),
        pytest.param(
            "images:\n- name: helloserver\n  newTag: v1\n- name: loadgen\n"
            "- name: helloserver\n  newTag: v2\n",
            ":5: images entry 'helloserver' repeats the one on line 2; fix these entries first",
            id="duplicate-names",
        ),
    ],
)
def test_entries_it_cannot_pin_exit_1_naming_them_and_leave_the_file_alone(
    images_repo: Path, images: str, message: str
):
    path = images_repo / "overlays/prod/kustomization.yaml"
    text = images + "resources:\n- ../../base/app\n"
    path.write_bytes(text.encode())
    proc = run_cli("images", "pin", "overlays/prod", *_pin_args(*PINS), cwd=images_repo)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"meshready: error: cannot pin: {path.resolve()}:")
    assert proc.stderr.rstrip("\n").endswith(message)
    assert path.read_bytes() == text.encode()


@pytest.mark.parametrize(
    "argument",
    [
        f"hello\nserver=gcr.io/p/helloserver@{HELLO}",
        f"helloserver\n=gcr.io/p/helloserver@{HELLO}",
        f"helloserver=gcr.io/p/hello\rserver@{HELLO}",
        f"hello\x1bserver=gcr.io/p/helloserver@{HELLO}",
        f"hello server=gcr.io/p/helloserver@{HELLO}",
        f"hello#x=gcr.io/p/helloserver@{HELLO}",
    ],
)
def test_a_name_with_a_control_character_is_a_one_line_usage_error(
    images_repo: Path, argument: str
):
    proc = run_cli("images", "pin", "overlays/prod", argument, cwd=images_repo)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("meshready: error: ")
    assert "Traceback" not in proc.stderr
    assert (images_repo / "overlays/prod/kustomization.yaml").read_text() == COMMENTED


def test_pin_text_refuses_a_control_character_from_any_caller():
    with pytest.raises(MeshreadyError, match=r"contains a control character \(U\+000A\)") as err:
        pin.pin_text(COMMENTED, [pin.Pin("hello\nserver", "r/x", HELLO)])
    assert err.value.exit_code == 2
