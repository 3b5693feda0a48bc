"""Rebuilding an image leaves no untagged old version behind (deploy/containers/
build-image.sh, which build.sh builds every image with): a `make test` after each change
of the code rebuilt two images and kept the old ones, 6 GB of podman's store here after a
few hundred runs. An old version a container still uses is kept, and its ID printed, so
that build.sh can try again at its end.

Tiny images from `scratch` of the test's own tag, with podman itself: no base image, no
registry, no network."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "deploy/containers/build-image.sh"


def podman(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)


def image_id(tag: str) -> str:
    out = podman("image", "inspect", "--format", "{{.Id}}", tag)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def exists(image: str) -> bool:
    return podman("image", "exists", image).returncode == 0


class Images:
    """A tag of the test's own; the images it named and the container, removed after."""

    def __init__(self) -> None:
        self.tag = f"localhost/platen-build-test-{uuid.uuid4().hex[:8]}"
        self.container = f"uses-{self.tag.rsplit('-', 1)[1]}"
        self.seen: list[str] = []

    def current(self) -> str:
        found = image_id(self.tag)
        self.seen.append(found)
        return found


@pytest.fixture
def scratch_images(tmp_path):
    (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY content /content\n")
    made = Images()
    yield made
    podman("rm", "--force", made.container)
    for image in reversed(made.seen):
        podman("rmi", "--force", image)


def build(tag: str, context: Path, content: str) -> str:
    (context / "content").write_text(content)
    out = subprocess.run(
        [str(SCRIPT), tag, str(context / "Containerfile"), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_rebuilt_image_leaves_no_old_version_and_one_in_use_is_kept(scratch_images, tmp_path):
    images = scratch_images
    tag = images.tag
    assert build(tag, tmp_path, "first") == ""
    first = images.current()

    # Nothing changed: the same image, nothing removed.
    assert build(tag, tmp_path, "first") == ""
    assert images.current() == first

    # Changed: the tag names the new image and the old one is gone, not left untagged.
    assert build(tag, tmp_path, "second") == ""
    second = images.current()
    assert second != first and not exists(first)

    # An old version a container uses stays, and the script says which one.
    container = podman("create", "--name", images.container, tag, "/content")
    assert container.returncode == 0, container.stderr
    assert build(tag, tmp_path, "third") == second
    assert exists(second) and images.current() not in (first, second)
