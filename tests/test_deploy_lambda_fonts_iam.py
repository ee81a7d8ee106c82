"""What the deployed Lambda site and function need: the fonts in the site's public dir
(and in its real bundle), pins matching the Python SDK, and IAM policies that grant what
renders need and match the installed Remotion.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from render_common.config import ROOT
from tests.support.deploy_lambda import (
    IAM,
    REMOTION,
    calls,
    copy_tree,
    font_files,
    needs_node,
    needs_remotion,
    remotion_installed,
    run,
)

# --- fonts: the site carries them ----------------------------------------------------------


@needs_remotion
def test_the_site_is_created_with_the_fonts_in_its_public_dir(sandbox: dict[str, Any]) -> None:
    """Lambda's Chromium has only its own fonts: `sites create` bundles remotion/public,
    so every font of src/fonts.json is there (as installed by Debian) when it runs."""
    result = run(sandbox["env"])
    assert result.returncode == 0, result.stderr
    _, site_call = calls(sandbox["log"])
    assert site_call["argv"][3:5] == ["sites", "create"]
    expected = {face["file"]: Path(face["source"]).stat().st_size for face in font_files()}
    assert site_call["public_fonts"] == expected
    assert "remotion/public/fonts (the site carries them)" in result.stderr


@needs_node
def test_missing_fonts_stop_the_deploy_before_anything_runs(sandbox: dict[str, Any]) -> None:
    script = copy_tree(sandbox["tmp"], "4.0.527", "4.0.527", "4.0.527")
    empty = sandbox["tmp"] / "no-fonts"
    empty.mkdir()
    result = run(sandbox["env"], script=script, RENDER_FONTS_DIR=str(empty))
    assert result.returncode != 0
    assert "FONTS_MISSING" in result.stderr
    for package in ("fonts-noto-cjk", "fonts-noto-color-emoji", "fonts-noto-core", "make setup"):
        assert package in result.stderr
    assert calls(sandbox["log"]) == []
    # A dry run only warns (and copies nothing).
    dry = run(sandbox["env"], "--dry-run", script=script, RENDER_FONTS_DIR=str(empty))
    assert dry.returncode == 0, dry.stderr
    assert "warning: FONTS_MISSING" in dry.stderr
    assert not list((script.parents[2] / "remotion" / "public" / "fonts").glob("*"))


@pytest.mark.slow
@needs_remotion
def test_the_site_bundle_carries_the_font_files(tmp_path: Path) -> None:
    """Bundled as `sites create` bundles (the default public dir, copied, not linked), the
    site holds every font as a real file, so the upload to S3 carries it."""
    subprocess.run(
        ["node", "scripts/stage-fonts.mjs"], cwd=REMOTION, check=True, capture_output=True
    )
    out = tmp_path / "site"
    script = (
        "const {bundle} = await import('@remotion/bundler');"
        f"await bundle({{entryPoint: 'src/index.ts', outDir: {json.dumps(str(out))},"
        " enableCaching: true});"
    )
    subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=REMOTION,
        check=True,
        capture_output=True,
        timeout=600,
    )
    for face in font_files():
        bundled = out / "public" / "fonts" / face["file"]
        assert not bundled.is_symlink() and not bundled.parent.is_symlink()
        assert bundled.stat().st_size == Path(face["source"]).stat().st_size, face
    assert "fonts/NotoSansCJK-Regular.ttc" in (out / "index.html").read_text()


def test_repo_pins_match_the_python_sdk() -> None:
    npm_pin = json.loads((REMOTION / "package.json").read_text())["dependencies"][
        "@remotion/lambda"
    ]
    py_pin = re.search(r'"remotion-lambda==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert py_pin and py_pin.group(1) == npm_pin
    import remotion_lambda

    assert npm_pin == remotion_lambda.VERSION
    if remotion_installed():
        installed = REMOTION / "node_modules" / "@remotion" / "lambda" / "package.json"
        assert json.loads(installed.read_text())["version"] == npm_pin


# --- IAM ---------------------------------------------------------------------------------


def actions(policy: dict[str, Any]) -> dict[str, list[str]]:
    """Action -> resources."""
    found: dict[str, list[str]] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            found.setdefault(action, []).extend(statement["Resource"])
    return found


def test_iam_policies_parse_and_grant_what_renders_need() -> None:
    role = actions(json.loads((IAM / "role-policy.json").read_text()))
    user = actions(json.loads((IAM / "user-policy.json").read_text()))
    for policy in (role, user):
        assert "arn:aws:lambda:*:*:function:remotion-render-*" in policy["lambda:InvokeFunction"]
        for action in ("s3:GetObject", "s3:PutObject"):
            assert "arn:aws:s3:::remotionlambda-*" in policy[action]
    for action in ("lambda:CreateFunction", "lambda:GetFunction", "s3:CreateBucket"):
        assert action in user
    assert user["iam:PassRole"] == ["arn:aws:iam::*:role/remotion-lambda-role"]
    readme = (IAM / "README.md").read_text()
    assert "remotion-lambda-role" in readme
    assert "lambda:InvokeFunction" in readme


@needs_remotion
@pytest.mark.parametrize("kind", ["role", "user"])
def test_iam_policies_match_the_installed_remotion(kind: str) -> None:
    """Fails after a Remotion upgrade until the policies are regenerated (iam/README.md)."""
    printed = subprocess.run(
        [str(REMOTION / "node_modules" / ".bin" / "remotion"), "lambda", "policies", kind],
        cwd=REMOTION,
        env={**os.environ, "NO_COLOR": "1", "AWS_REGION": "us-east-1", "REMOTION_AWS_REGION": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    saved = (IAM / f"{kind}-policy.json").read_text()
    assert json.loads(printed.stdout) == json.loads(saved)
