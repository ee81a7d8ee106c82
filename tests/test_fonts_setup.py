"""The fonts of the text scenes (remotion/src/fonts.json): installed from Debian's packages by
`make setup` and the worker image, copied into the public dir the bundle and the Lambda
site carry, never committed to git, and a clear error when they are missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from render_common.config import ROOT

REMOTION = ROOT / "remotion"
MANIFEST = json.loads((REMOTION / "src" / "fonts.json").read_text())
STAGE = REMOTION / "scripts" / "stage-fonts.mjs"

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def faces() -> list[dict[str, Any]]:
    return [
        {**face, "package": family["package"]}
        for family in MANIFEST["families"]
        for face in family["faces"]
    ]


def packages() -> set[str]:
    return {family["package"] for family in MANIFEST["families"]}


def test_the_stack_covers_the_scripts_users_write() -> None:
    covers = " ".join(family["covers"] for family in MANIFEST["families"])
    for script in ("Latin", "Arabic", "Hebrew", "Devanagari", "Thai", "Chinese", "Japanese"):
        assert script in covers
    assert "Korean" in covers and "emoji" in covers
    families = [family["family"] for family in MANIFEST["families"]]
    assert len(set(families)) == len(families)
    for face in faces():
        assert face["source"].startswith("/usr/share/fonts/"), face
        assert face["source"].endswith("/" + face["file"]), face


def test_make_setup_and_the_worker_image_install_the_packages() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    system_part = setup[setup.index("system_part() {") :]
    dockerfile = (ROOT / "deploy" / "images" / "worker.Dockerfile").read_text()
    apt_line = next(line for line in dockerfile.splitlines() if "fonts-dejavu-core" in line)
    for package in packages():
        assert package in system_part, package
        assert package in apt_line, package
    assert "node remotion/scripts/stage-fonts.mjs" in system_part
    # Copied before the image bundles the compositions (as root: remotion/ is root's).
    assert dockerfile.index("stage-fonts.mjs") < dockerfile.index("USER 10001")
    assert dockerfile.index("stage-fonts.mjs") < dockerfile.index("ensureBundle")


def test_fonts_are_not_in_git() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--", "remotion/public", "*.ttf", "*.ttc", "*.otf", "*.woff2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tracked == ""
    assert "public/fonts/" in (REMOTION / ".gitignore").read_text().splitlines()


def stage(public: Path, source_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(STAGE), *args, str(public)],
        env={**os.environ, "RENDER_FONTS_DIR": str(source_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_node
def test_staging_copies_once_and_names_what_is_missing(tmp_path: Path) -> None:
    source = tmp_path / "installed"
    source.mkdir()
    for i, face in enumerate(faces()):
        (source / face["file"]).write_bytes(f"font {i}".encode() * (i + 1))
    public = tmp_path / "public"

    first = stage(public, source)
    assert first.returncode == 0, first.stderr
    assert f"{len(faces())} copied" in first.stderr
    for face in faces():
        staged, original = public / "fonts" / face["file"], source / face["file"]
        assert staged.read_bytes() == original.read_bytes()
        assert int(staged.stat().st_mtime) == int(original.stat().st_mtime)
    again = stage(public, source)
    assert again.returncode == 0 and "(0 copied)" in again.stderr

    # A font whose package was removed: a staged copy is kept; without one, a clear error.
    cjk = next(face for face in faces() if face["package"] == "fonts-noto-cjk")
    (source / cjk["file"]).unlink()
    assert stage(public, source).returncode == 0
    (public / "fonts" / cjk["file"]).unlink()
    for args in ((), ("--check",)):
        missing = stage(public, source, *args)
        assert missing.returncode == 1
        assert "FONTS_MISSING" in missing.stderr
        assert cjk["file"] in missing.stderr and "fonts-noto-cjk" in missing.stderr
        assert "make setup" in missing.stderr and "RENDER_FONTS_DIR" in missing.stderr


def test_debian_paths_are_the_installed_ones() -> None:
    """Where the packages are installed (make setup), the manifest's paths exist."""
    if shutil.which("dpkg") is None:
        pytest.skip("not a Debian system")
    installed = [
        package
        for package in packages()
        if subprocess.run(["dpkg", "-s", package], capture_output=True, check=False).returncode == 0
    ]
    if not installed:
        pytest.skip("the font packages are not installed (make setup)")
    for face in faces():
        if face["package"] in installed:
            assert Path(face["source"]).is_file(), face
