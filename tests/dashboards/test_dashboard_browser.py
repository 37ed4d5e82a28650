"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium):
it loads, shows the model and draws a chart. A screenshot is saved for people to look at."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from api_support import READ_TOKEN
from dashboard_story import MODEL

from monitor.ports import free_port
from monitor.service.components import DashboardComponent

pytestmark = pytest.mark.slow
SCREENSHOT_DIR = Path(os.environ.get("MONITOR_SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "bench" / "out"))


def _chrome(user_data_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "chromium and chromium-driver are not installed: run `make install`"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={user_data_dir}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def test_dashboard_in_headless_chromium(story_api: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    dashboard = DashboardComponent(
        story_api, "127.0.0.1", free_port(), log_file=tmp_path / "streamlit.log", token=READ_TOKEN
    )
    dashboard.start()
    driver = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{dashboard.url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert dashboard.healthy(), (tmp_path / "streamlit.log").read_text()
            time.sleep(0.5)
        driver = _chrome(tmp_path / "chrome-profile")
        driver.get(f"{dashboard.url}/model?model={MODEL}")
        wait = WebDriverWait(driver, 60)
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), MODEL))
        chart = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".vega-embed canvas, .vega-embed svg")))
        assert chart.size["width"] > 100 and chart.size["height"] > 50
        time.sleep(2)  # let the remaining charts finish drawing for the screenshot
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOT_DIR / "dashboard-model.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Open alerts" in body and "Drift" in body
    finally:
        if driver is not None:
            driver.quit()
        dashboard.stop(10)
