"""``condsynth demo`` in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by Selenium.

The app runs in this process on a free local port. The test uploads a held-out photo to the paint tab and checks
that the painting is shown; bad uploads must show their one-line message in the page and leave the server
running. A screenshot of each tab goes to ``$CONDSYNTH_DEMO_SCREENSHOTS`` (or the test's temporary folder).
``.ci/run`` installs the browser; where none can be installed these tests skip and say why.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo_helpers import bad_uploads, held_out_photo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="no Chromium with ChromeDriver here (Debian: apt-get install chromium chromium-driver)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    pytest.importorskip("gradio")
    from condsynth.demo.app import build_app, demo_session, launch
    from condsynth.demo.runner import DemoRunner
    with demo_session(tmp_path_factory.mktemp("session")) as folder:
        runner = DemoRunner(folder / "results")
        app = build_app(runner)
        port = _free_port()
        launch(app, port=port, block=False, allowed=[str(folder)])
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            app.close()


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # the closed network refuses Chromium's background connections: turn them off (env/machines notes)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1400,1700"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("CONDSYNTH_DEMO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait(condition, timeout: float = 60.0, what: str = ""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def _open_tab(driver, title: str) -> None:
    from selenium.webdriver.common.by import By
    tab = _wait(lambda: [b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text == title],
                what=f"the {title} tab")[0]
    tab.click()
    time.sleep(0.5)


def _upload(driver, elem_id: str, path) -> None:
    from selenium.webdriver.common.by import By
    field = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} input[type=file]"),
                  what=f"the file input of #{elem_id}")[0]
    field.send_keys(str(path))


def _clear(driver, elem_id: str) -> None:
    """The file component's own clear button, so that the next upload is a change."""
    from selenium.webdriver.common.by import By
    for b in driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} button"):
        if (b.get_attribute("aria-label") or "").lower() in ("clear", "remove"):
            b.click()
            time.sleep(0.3)
            return


def _page_text(driver) -> str:
    return driver.execute_script("return document.body.innerText")


def _dismiss_toasts(driver) -> None:
    driver.execute_script("document.querySelectorAll('.toast-close').forEach(b => b.click())")
    time.sleep(0.3)


def test_each_tab_renders(demo_url, browser, shots):
    browser.get(demo_url)
    for title in ("Paint", "Translate", "Text to image", "Face aging", "About"):
        if title == "Face aging" and not _has_tab(browser, title):
            continue                                   # the faces extra is not installed: the About tab says so
        _open_tab(browser, title)
        browser.save_screenshot(str(shots / f"tab_{title.lower().replace(' ', '_')}.png"))
    assert "Not shown here" in _page_text(browser) and "--talk-checkpoint" in _page_text(browser)


def _has_tab(driver, title: str) -> bool:
    from selenium.webdriver.common.by import By
    return any(b.text == title for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]"))


def test_bad_uploads_show_a_message_and_the_server_goes_on(demo_url, browser, shots, tmp_path):
    browser.get(demo_url)
    _open_tab(browser, "Paint")
    for name, (path, message) in bad_uploads(tmp_path).items():
        _upload(browser, "paint-photo", path)
        _wait(lambda: message in _page_text(browser), 60, f"the message '{message}...' for the {name} upload")
        browser.save_screenshot(str(shots / f"bad_upload_{name}.png"))
        _dismiss_toasts(browser)
        _clear(browser, "paint-photo")
    with urllib.request.urlopen(demo_url, timeout=10) as r:             # still serving
        assert r.status == 200


def test_paint_tab_paints_a_held_out_photo(demo_url, browser, shots):
    from selenium.webdriver.common.by import By
    browser.get(demo_url)
    _open_tab(browser, "Paint")
    _upload(browser, "paint-photo", held_out_photo())
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#paint-preview img"), 60, "the photo's preview")
    browser.find_element(By.ID, "paint-run").click()
    img = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#paint-result img"), 120, "the painting")[0]
    _wait(lambda: browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img), 30,
          "the painting to load")
    _wait(lambda: "strokes on a" in _page_text(browser), 30, "the summary")
    browser.save_screenshot(str(shots / "paint_result.png"))
    with urllib.request.urlopen(img.get_attribute("src"), timeout=30) as r:
        painting = np.asarray(Image.open(io.BytesIO(r.read())).convert("RGB")).astype(np.float32) / 255
    photo = np.asarray(Image.open(held_out_photo()).convert("RGB").resize(painting.shape[1::-1])) / 255.0
    assert max(painting.shape[:2]) == 384                               # the tab's default long side
    # it is a painting of this photo: much closer to it than the photo's flat mean colour is
    assert np.mean((painting - photo) ** 2) < 0.5 * np.mean((photo - photo.mean((0, 1))) ** 2)
    assert "200 strokes" in _page_text(browser)
