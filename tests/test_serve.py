"""``rnngen serve``: the canvas reading, the repair the page calls, and the page itself driven in a
real headless browser (Debian's chromium and chromedriver through Selenium)."""

import io
import os
import shutil
import socket
import time
import urllib.request

import numpy as np
import pytest
import torch

from rnngen.serve import PageError, Repairer, from_canvas, scale_for, to_canvas


@pytest.fixture(scope="module")
def digits_model():
    from rnngen.cli import pretrained_path
    from rnngen.models import load_model

    model, payload = load_model(pretrained_path())
    return model, payload


def test_canvas_round_trip():
    g = torch.Generator().manual_seed(0)
    values = torch.randint(0, 17, (1, 5, 7), generator=g)
    regenerate = torch.rand(5, 7, generator=g) < 0.3
    canvas = to_canvas(values, 17, 3, regenerate)
    assert canvas.shape == (15, 21, 3) and canvas.dtype == np.uint8
    back, marked = from_canvas(canvas, (5, 7), 17)
    assert torch.equal(marked, regenerate)
    assert torch.equal(back[:, ~regenerate], values[:, ~regenerate])
    assert scale_for((8, 8)) == 32 and scale_for((28, 28)) == 9 and scale_for((300, 10)) == 1


def test_canvas_reads_what_covers_most_of_a_square():
    canvas = np.zeros((8, 8, 3), np.uint8)  # a 2x2 image at scale 4
    canvas[0:3, 0:4] = 255  # 12 of pixel (0, 0)'s 16 screen pixels white: it is white
    canvas[4:5, 4:8] = (255, 0, 0)  # 4 of 16 red: pixel (1, 1) is not marked
    canvas[0:4, 4:8] = (250, 10, 10)  # all red: pixel (0, 1) is marked
    values, marked = from_canvas(canvas, (2, 2), 2)
    assert values[0].tolist() == [[1, 0], [0, 0]]
    assert marked.tolist() == [[False, True], [False, False]]


@pytest.mark.parametrize("canvas, message", [
    (np.zeros((16, 16), np.uint8), "RGB image"),
    (np.zeros((16, 12, 3), np.uint8), "whole multiple"),
    (np.zeros((17, 17, 3), np.uint8), "whole multiple"),
    (np.zeros((5000, 5000, 3), np.uint8), "at most 4096"),
    ("a string", "RGB image"),
])
def test_canvas_bad_input(canvas, message):
    with pytest.raises(PageError, match=message):
        from_canvas(canvas, (8, 8), 17)


def test_repair_keeps_the_given_pixels_and_equals_complete(digits_model):
    model, _ = digits_model
    images, labels = torch.randint(0, 17, (1, 1, 8, 8)), torch.tensor([3])
    repairer = Repairer(model, examples=(images, labels))
    regenerate = torch.zeros(8, 8, dtype=torch.bool)
    regenerate[2:5, 1:6] = True  # a hole in the middle: pixels after it are given too
    canvas = to_canvas(images[0], 17, repairer.scale, regenerate)
    out, report = repairer(canvas, 3, 0.8, 5)
    result, _ = from_canvas(out, (8, 8), 17)
    assert torch.equal(result[:, ~regenerate], images[0][:, ~regenerate])
    expected = model.complete(images, ~regenerate, labels=labels, temperature=0.8, seed=5)
    assert torch.equal(result, expected[0])
    assert "15 of 64 pixels regenerated" in report and "ms" in report


@pytest.mark.parametrize("choices, message", [
    ((10, 1.0, 0), r"class must be one of 0\.\.9, got 10"),
    (("x", 1.0, 0), "class must be one of"),
    ((1, 0.0, 0), r"temperature must be in 0\.05\.\.5"),
    ((1, "hot", 0), "temperature must be a number"),
    ((1, float("nan"), 0), "temperature must be in"),
    ((1, 1.0, -1), "seed must be a whole number"),
    ((1, 1.0, 2**63), "seed must be a whole number"),
    ((1, 1.0, 0.5), "seed must be a whole number"),
    ((1, 1.0, None), "seed must be a whole number"),
])
def test_repair_bad_choices(digits_model, choices, message):
    model, _ = digits_model
    repairer = Repairer(model)
    canvas, _ = repairer.example(0)
    with pytest.raises(PageError, match=message):
        repairer(canvas, *choices)


def test_serve_refuses_a_model_without_completion():
    gr = pytest.importorskip("gradio")
    del gr
    from rnngen.models import SeedVAE
    from rnngen.serve import build_app

    with pytest.raises(ValueError, match="cannot complete images"):
        build_app(SeedVAE((8, 8), levels=17), {"model": "SeedVAE"})


# --------------------------------------------------------------------------- the page in a browser

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _browser():
    """A headless Chromium under Selenium, or a skip that says what is missing."""
    pytest.importorskip("gradio", reason="the page needs gradio: pip install 'rnngen[serve]'")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (the test extra)")
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    driver = shutil.which("chromedriver") or (CHROMEDRIVER if os.path.exists(CHROMEDRIVER) else None)
    if not (chromium and driver):
        pytest.skip("no browser: install Debian's chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver); .ci/run does")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # Headless, and none of Chromium's own network traffic (this machine's network is closed).
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _result(browser):
    """The completion the page shows, read back from its PNG, and that image's address."""
    from PIL import Image

    src = browser.find_element("css selector", "#completion img").get_attribute("src")
    with urllib.request.urlopen(src, timeout=30) as response:
        picture = np.array(Image.open(io.BytesIO(response.read())).convert("RGB"))
    return picture, src


def test_page_in_a_browser(digits_model, tmp_path):
    """Load the page, draw a white stroke over row 1 of the first test digit (its bottom half is
    marked red), read the completion back: the given pixels are kept, the stroke is there, and
    the image is the library's own completion of what was drawn."""
    browser = _browser()
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from rnngen.data import load_dataset
    from rnngen.serve import serve

    model, _ = digits_model
    app, url = serve(port=_free_port(), block=False)
    assert url.startswith("http://127.0.0.1:")  # local unless told otherwise
    try:
        wait = WebDriverWait(browser, 90, poll_frequency=0.2)
        browser.get(url)
        wait.until(lambda b: "pixels regenerated" in b.find_element("id", "timing").text)
        first, first_src = _result(browser)
        test = load_dataset("digits").test
        original, label = test.images[0].long(), int(test.labels[0])
        values, _ = from_canvas(first, (8, 8), 17)
        assert torch.equal(values[:, :4], original[:, :4])  # the page opens on test digit 0, top half given

        # Draw: a white stroke (the brush's default colour) across image row 1.
        zoom = next(e.text for e in browser.find_elements("css selector", "#canvas *")
                    if e.text.endswith("%") and e.text[:-1].isdigit())
        side = 256 * float(zoom[:-1]) / 100  # the 256-pixel canvas as shown
        canvas = browser.find_elements("css selector", "#canvas canvas")[-1]
        stroke = ActionChains(browser).move_to_element_with_offset(canvas, int(-0.47 * side), int(-0.31 * side))
        stroke.click_and_hold()
        for _ in range(10):
            stroke.move_by_offset(int(0.094 * side), 0)
        stroke.release().perform()
        browser.find_element("id", "complete").click()
        wait.until(lambda b: _result(b)[1] != first_src)
        time.sleep(1.0)  # a live update may still be on its way; take the last one
        picture, _ = _result(browser)
        values, marked = from_canvas(picture, (8, 8), 17)
        assert not marked.any()
        drawn = original.clone()
        drawn[:, 1] = 16
        assert torch.equal(values[:, :4], drawn[:, :4]), values[0]
        mask = torch.zeros(8, 8, dtype=torch.bool)
        mask[:4] = True
        expected = model.complete(drawn[None], mask, labels=torch.tensor([label]), seed=0)[0]
        assert torch.equal(values, expected)
        assert "32 of 64 pixels regenerated" in browser.find_element("id", "timing").text
        browser.save_screenshot(str(tmp_path / "page.png"))

        # Bad input: a message on the page, not a traceback.
        seed = browser.find_element("css selector", "#seed input")
        seed.send_keys(Keys.CONTROL, "a")
        seed.send_keys("-7", Keys.ENTER)
        wait.until(lambda b: "seed must be a whole number in 0..2**63-1, got -7" in b.find_element("tag name", "body").text)
        assert "Traceback" not in browser.find_element("tag name", "body").text
    finally:
        browser.quit()
        app.close()


def test_serve_command(tmp_path):
    """`rnngen serve` starts the page on 127.0.0.1 and stops on a signal; bad options are one line."""
    import signal
    import subprocess
    import sys

    pytest.importorskip("gradio", reason="the page needs gradio: pip install 'rnngen[serve]'")
    from rnngen.checkpoint import export_weights
    from rnngen.models import GeneratorVAE

    def run(*args):
        done = subprocess.run([sys.executable, "-m", "rnngen", "serve", *args], capture_output=True, text=True,
                              timeout=120)
        return done.returncode, done.stderr.strip()

    assert run("--port", "0") == (2, "rnngen serve: error: --port must be in 1..65535, got 0")
    code, err = run("--checkpoint", str(tmp_path / "none.pt"))
    assert code == 2 and err.endswith("--checkpoint file not found: " + str(tmp_path / "none.pt"))
    vae = tmp_path / "vae.pt"
    model = GeneratorVAE((8, 8), levels=17)
    export_weights(str(vae), model, "GeneratorVAE", {"spec": "digits"}, {})
    code, err = run("--checkpoint", str(vae))
    assert code == 2 and "cannot complete images" in err and "Traceback" not in err

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "rnngen", "serve", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    assert response.status == 200 and b"gradio" in response.read().lower()
                    break
            except OSError:
                assert server.poll() is None and time.time() < deadline, "the page never came up"
                time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            output = server.communicate(timeout=120)[0]
        except subprocess.TimeoutExpired:  # say what it printed instead of a bare timeout
            server.kill()
            pytest.fail(f"rnngen serve did not stop within 120 s of SIGINT; it printed:\n{server.communicate()[0]}")
    assert f"http://127.0.0.1:{port}" in output  # where it said it listens
