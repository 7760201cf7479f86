"""The demo in a real browser: Debian's Chromium driven by Playwright (never a downloaded browser).

Uploads an image, waits for the overlays and the verdict, saves a screenshot (kept in
``$DIFFSEG30K_TEST_ARTIFACTS`` when set); then checks that a broken upload shows a readable error.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urljoin

import pytest
from PIL import Image

from diffseg30k.data.synthetic import synthetic_pair

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Debian's Chromium is not installed at {CHROMIUM} "
                                       "(apt-get install -y chromium; tests/run_all.sh does it)")


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    import torch

    from diffseg30k.demo import build_app, launch_kwargs
    from diffseg30k.models.registry import build_model
    from diffseg30k.training.checkpoints import export_detector

    torch.manual_seed(0)
    checkpoint = export_detector(build_model("segformer-tiny", crop_size=64),
                                 tmp_path_factory.mktemp("c") / "ckpt", {})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = build_app(str(checkpoint))
    app.launch(**{**launch_kwargs("127.0.0.1", port), "prevent_thread_lock": True, "quiet": True})
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def page(url):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.goto(url, wait_until="networkidle", timeout=120_000)
            yield tab
        finally:
            browser.close()


def test_upload_shows_overlays_verdict_and_mask(page, tmp_path):
    image = tmp_path / "photo.png"
    synthetic_pair(21, (160, 120))[0].save(image)
    page.locator("#input-image input[type=file]").set_input_files(str(image))
    page.locator("#detect").click()
    page.locator("#verdict").get_by_text("Verdict:").wait_for(timeout=120_000)
    for element in ("#semantic-overlay img", "#binary-overlay img"):
        page.locator(element).first.wait_for(state="visible", timeout=60_000)
    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("DIFFSEG30K_TEST_ARTIFACTS"):
        target = Path(os.environ["DIFFSEG30K_TEST_ARTIFACTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "browser_demo.png")
    assert shot.stat().st_size > 10_000
    assert page.locator("#legend").get_by_text("flux").is_visible()
    link = page.locator("#mask-file a[href*='photo_diffseg30k_mask.png']").first
    link.wait_for(state="attached", timeout=30_000)
    response = page.request.get(urljoin(page.url, link.get_attribute("href")))
    mask = Image.open(io.BytesIO(response.body()))
    assert response.ok and mask.mode == "P" and mask.size == (160, 120)


def test_broken_upload_shows_a_readable_error(page, tmp_path):
    broken = tmp_path / "broken.png"
    synthetic_pair(22, (64, 64))[0].save(broken)
    broken.write_bytes(broken.read_bytes()[:300])
    page.locator("#input-image input[type=file]").set_input_files(str(broken))
    page.locator("#detect").click()
    page.get_by_text("broken.png: truncated or corrupt image data").first.wait_for(timeout=60_000)


def test_picking_an_example_shows_its_ground_truth_and_runs_the_detector(page):
    from diffseg30k.demo import example_set

    first = example_set()[0]  # a mini-data sample: its label says so, its ground truth comes along
    assert first.label.startswith("mini data: ") and first.truth
    page.get_by_text(first.label).first.click()
    page.locator("#ground-truth img").first.wait_for(state="visible", timeout=60_000)
    page.locator("#detect").click()
    link = page.locator(f"#mask-file a[href*='{Path(first.image).stem}_diffseg30k_mask.png']").first
    link.wait_for(state="attached", timeout=120_000)
    page.locator("#verdict").get_by_text("Verdict:").wait_for(timeout=30_000)
    if os.environ.get("DIFFSEG30K_TEST_ARTIFACTS"):
        page.screenshot(path=str(Path(os.environ["DIFFSEG30K_TEST_ARTIFACTS"]) / "browser_example.png"),
                        full_page=True)
