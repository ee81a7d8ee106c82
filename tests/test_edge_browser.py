"""The export page in a real browser (Playwright driving Debian's chromium-headless-shell).

A real stack: render_api, progress and an SSR worker in this process, the edge in its own.
Export the tiny sample and watch the bar reach 100%, download the MP4 and probe it; reload
in mid-render and see the bar carry on without going back; cancel from the page; another
user's render id in the address shows "not found". A screenshot of the finished page is
kept in tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Page, Route, async_playwright
from render.v1 import render_pb2, render_service_pb2

from render_common.auth import mint_session_token
from render_common.config import ROOT, Settings
from services.progress import app as progress_app
from tests.support.edge import EdgeProcess
from tests.support.processes import sqlite_url
from tests.support.scenes import scene
from tests.support.stack import Stack, ffprobe, start_stack

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium-headless-shell"
ARTIFACTS = ROOT / "tests" / "artifacts"
DAILY_LIMIT = 4  # the test's user exports 4 renders, then hits the quota


@pytest_asyncio.fixture(loop_scope="session")
async def world(
    base_settings: Settings, tmp_path: Path, user: str
) -> AsyncIterator[tuple[Stack, EdgeProcess]]:
    """render_api + worker + progress on SQLite, and the edge."""
    settings = base_settings.with_overrides(
        database_url=sqlite_url(tmp_path),
        data_dir=str(tmp_path / "data"),
        daily_render_limit=DAILY_LIMIT,
    )
    stack = await start_stack(settings, user)
    progress = await progress_app.start(settings, port=0)
    edge = EdgeProcess(
        settings,
        render_api_port=stack.api.port,
        progress_port=progress.port,
        log=tmp_path / "edge.log",
    )
    await asyncio.to_thread(edge.start)
    try:
        yield stack, edge
    finally:
        await asyncio.to_thread(edge.stop)
        await progress.stop(0)
        await stack.close()


async def bar(page: Page) -> int:
    """The progress bar's value."""
    return int(await page.eval_on_selector("#bar", "b => b.value"))


async def wait_for_text(page: Page, selector: str, text: str, timeout: float = 180) -> None:
    """Wait until an element's text contains `text`."""
    await page.wait_for_function(
        "([s, t]) => (document.querySelector(s)?.textContent || '').includes(t)",
        arg=[selector, text],
        timeout=timeout * 1000,
    )


async def export(page: Page, scenes_file: Path | None = None) -> str:
    """Choose a scenes file (or keep the tiny sample), press Export; the new render id."""
    if scenes_file is not None:
        await page.set_input_files("#scenes-file", str(scenes_file))
    else:
        await page.set_input_files("#scenes-file", [])
    current = "() => new URL(location.href).searchParams.get('render') || ''"
    before = await page.evaluate(current)
    await page.get_by_role("button", name="Export").click()
    await page.wait_for_function(
        f"b => ({current})() && ({current})() !== b", arg=before, timeout=30_000
    )
    return str(await page.evaluate(current))


def scenes_file(path: Path, scenes: list[dict[str, object]]) -> Path:
    """Write a scenes file for the page's file input."""
    path.write_text(json.dumps({"projectId": "browser", "scenes": scenes}))
    return path


async def sign_in(page: Page, edge: EdgeProcess, session: str, user: str) -> None:
    """Open the sign-in link: it names the account; its button signs in (by POST)."""
    await page.goto(f"{edge.url}/login?token={session}")
    assert await page.text_content("#account") == user
    await page.get_by_role("button", name=f"Continue as {user}").click()
    await wait_for_text(page, "#who", f"Signed in as {user}", timeout=15)


async def watch_until_done(page: Page) -> list[int]:
    """The bar's values until the outcome says Done."""
    seen: list[int] = []
    async with asyncio.timeout(180):
        while "Done" not in (await page.text_content("#outcome") or ""):
            seen.append(await bar(page))
            await asyncio.sleep(0.05)
    seen.append(await bar(page))
    return seen


async def export_sample_and_download(page: Page, edge: EdgeProcess, tmp_path: Path) -> None:
    """Export the tiny sample, 9:16 at 60 fps, by keyboard; the bar climbs to 100%;
    download and probe."""
    assert await page.eval_on_selector("#sample", "s => s.value") == "tiny.json"
    await page.get_by_label("Aspect ratio").select_option("ASPECT_RATIO_9_16")
    await page.get_by_label("Frame rate").focus()
    await page.keyboard.press("End")  # the last choice: 60 fps
    assert await page.get_by_label("Frame rate").input_value() == "60"
    await page.focus("#export")
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        "() => new URL(location.href).searchParams.get('render')", timeout=30_000
    )
    seen = await watch_until_done(page)
    assert seen[-1] == 100 and seen == sorted(seen), seen
    frames = (await page.text_content("#frames") or "").split()
    assert frames[0] == frames[2] and int(frames[0]) >= 20, frames
    href = await page.get_attribute("#download", "href")
    assert href and (await page.is_visible("#download"))
    download = await page.request.get(f"{edge.url}{href}")
    assert download.status == 200
    video = tmp_path / "download.mp4"
    video.write_bytes(await download.body())
    probe = ffprobe(video)
    assert probe["video"]["codec_name"] == "h264"
    assert (probe["video"]["width"], probe["video"]["height"]) == (720, 1280)
    assert probe["video"]["r_frame_rate"] == "60/1"
    # The history lists it with a thumbnail that loads.
    await page.get_by_role("button", name="Refresh").click()
    await page.locator("#history img").first.wait_for(timeout=15_000)
    await page.wait_for_function(
        "() => { const i = document.querySelector('#history img');"
        " return i && i.complete && i.naturalWidth > 0; }",
        timeout=15_000,
    )
    assert "9:16 · 60 fps" in (await page.text_content("#history") or "")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "edge-export-page.png"), full_page=True)
    await page.get_by_label("Aspect ratio").select_option("ASPECT_RATIO_16_9")  # the next
    await page.get_by_label("Frame rate").select_option("30")  # exports: short and small


async def reload_mid_render(page: Page, longer: Path) -> None:
    """Reload while rendering: the bar carries on from where it was, never back."""
    render_id = await export(page, longer)
    async with asyncio.timeout(180):
        while not 5 <= (before := await bar(page)) <= 80:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    await page.reload()
    after = await watch_until_done(page)
    assert after[0] >= before, (before, after[:10])
    assert after == sorted(after) and after[-1] == 100, after
    assert await page.eval_on_selector("#current-id", "e => e.textContent") == render_id


async def cancel_from_the_page(page: Page, stack: Stack, longer: Path) -> None:
    """Cancel: the page says so, no download, the render is CANCELLED. CancelRender's
    answer is held back until after the stream's terminal event (a slow network), which
    must not leave the page saying "Cancelling…"."""

    async def answer_late(route: Route) -> None:
        response = await route.fetch()
        await asyncio.sleep(2)
        await route.fulfill(response=response)

    cancelled_id = await export(page, longer)
    await page.route("**/render.v1.RenderService/CancelRender", answer_late)
    await page.get_by_role("button", name="Cancel").click()
    await wait_for_text(page, "#outcome", "Cancelled", timeout=60)
    await asyncio.sleep(2.5)  # the answer has arrived meanwhile
    assert (await page.text_content("#outcome") or "").startswith("Cancelled")
    await page.unroute("**/render.v1.RenderService/CancelRender")
    assert await page.is_hidden("#download")
    final = await stack.get(cancelled_id)
    assert final.state == render_pb2.Render.STATE_CANCELLED


async def failure_then_quota(page: Page, tmp_path: Path) -> None:
    """A failing render says why; the next export is over the daily quota, in words."""
    image = {"type": "image", "durationInFrames": 10, "props": {"src": "http://127.0.0.1:9/x.png"}}
    await export(page, scenes_file(tmp_path / "failing.json", [image]))
    await wait_for_text(page, "#outcome", "Render failed:", timeout=60)
    assert "(ASSET_FORBIDDEN)" in (await page.text_content("#outcome") or "")
    assert await page.is_hidden("#download")
    assert await page.text_content("#stage") == "failed"
    await page.get_by_role("button", name="Export").click()
    await wait_for_text(page, "#error", "Quota reached:", timeout=15)
    assert await page.get_attribute("#error", "role") == "alert"
    await page.screenshot(path=str(ARTIFACTS / "edge-errors.png"), full_page=True)


async def other_users_render_is_not_found(
    page: Page, stack: Stack, edge: EdgeProcess, user: str
) -> None:
    """Another user's render id in the address: "Render not found", nothing shown."""
    other = Stack(stack.settings, stack.api, None, stack.channel, f"{user}-other")
    theirs = await other.start([scene("color", 30, color="red")])
    await other.stub.CancelRender(
        render_service_pb2.CancelRenderRequest(render_id=theirs.render_id),
        metadata=other.auth,
    )
    await page.goto(f"{edge.url}/?render={theirs.render_id}")
    await wait_for_text(page, "#error", "Render not found", timeout=15)
    assert await page.is_hidden("#current")


async def test_export_page_in_a_real_browser(
    world: tuple[Stack, EdgeProcess], tmp_path: Path, user: str
) -> None:
    stack, edge = world
    session = mint_session_token(stack.settings, user, ttl_seconds=1800)
    longer = scenes_file(
        tmp_path / "longer.json",
        [
            {"type": "gradient", "durationInFrames": 150, "props": {"from": "navy", "to": "teal"}},
            {"type": "title", "durationInFrames": 150, "props": {"text": "Still going"}},
        ],
    )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        page = await browser.new_page(viewport={"width": 1100, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await sign_in(page, edge, session, user)
        await export_sample_and_download(page, edge, tmp_path)
        await reload_mid_render(page, longer)
        await cancel_from_the_page(page, stack, longer)
        await failure_then_quota(page, tmp_path)
        await other_users_render_is_not_found(page, stack, edge, user)
        await browser.close()
    assert not errors, errors
