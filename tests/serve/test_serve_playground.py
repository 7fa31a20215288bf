"""The playground page (``GET /``) in headless Chromium (the ``browser`` fixture of conftest.py): it
submits a prompt, follows the progress and shows the image."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def test_playground_generates_and_shows_the_image(browser, shapes_server):
    browser.get(shapes_server.url + "/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda b: "shapes" in b.find_element(By.ID, "model").text)
    assert browser.find_element(By.ID, "width").get_attribute("value") == "64"  # the model's defaults
    steps = browser.find_element(By.ID, "steps")
    steps.clear()
    steps.send_keys("6")
    prompt = browser.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys("a blue triangle on a white background")
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda b: b.execute_script(
        "const img = document.getElementById('result'); return img && img.complete && img.naturalWidth > 0;"))
    size = browser.execute_script("const img = document.getElementById('result'); "
                                  "return [img.naturalWidth, img.naturalHeight];")
    assert size == [64, 64]
    assert browser.find_element(By.ID, "status").text.startswith("completed in")
    assert browser.execute_script("return document.getElementById('progress').value") == 1
    # the recent-jobs table lists it, with the prompt
    wait.until(lambda b: "a blue triangle on a white background" in b.find_element(By.ID, "jobs").text)
    logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not logs, logs
