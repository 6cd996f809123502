"""The drawing pad in a real browser: JupyterLab (or Jupyter Notebook 7) serves a notebook, Chromium runs it, a mouse
draws.

Starts the front end's server on 127.0.0.1 (a free port, a token, a temporary root holding the
notebook), opens the notebook in Chromium through Playwright and runs every cell. In notebook 06 it
draws a "1" and then a "7" on the drawing pad with mouse events, and checks that the page shows the
right caption and a new attention strip each time, in JupyterLab and in Notebook 7. In a small
notebook of its own it writes "71" on the wide pad with the shipped reader of numbers, and checks
that the page reads "7", then "71", with a strip of one map per digit. In a notebook with two wide pads it
scrolls to the lower one, focuses its brush and draws: the canvas must stay where the pen is while the answers
arrive. Screenshots are saved in artifacts/browser/.

Needs a Chromium: Debian's at /usr/bin/chromium (what CI installs), or the one the CROSSMODAL_CHROMIUM environment
variable names (any Chromium or Chrome; the README says where to get one). Playwright's own browser download is
never used. Without a browser the test is skipped, except in CI (CI=true), where it fails.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CROSSMODAL_CHROMIUM") or "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "06_attention_maps.ipynb"
ARTIFACTS = REPO / "artifacts" / "browser"

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium (apt-get install -y chromium)",
                    pytrace=False)
    pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install -y chromium, or set CROSSMODAL_CHROMIUM to a "
                "Chromium or Chrome)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402  (only once we know there is a browser)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# How each front end is started, and where it opens a notebook. Both expose window.jupyterapp, through which the
# test runs all cells with the front end's own command and watches the kernel.
FRONT_ENDS = {
    "JupyterLab": (["jupyterlab", "--LabApp.expose_app_in_browser=True",
                    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"], "lab/tree"),  # no network
    "Notebook 7": (["notebook", "--JupyterNotebookApp.expose_app_in_browser=True"], "notebooks"),
}


@pytest.fixture(params=list(FRONT_ENDS))
def notebook_06(tmp_path, request):
    """A server of each front end on a temporary root holding a copy of notebook 06; yields (URL of the notebook)."""
    notebook = json.loads(NOTEBOOK.read_text())
    notebook["metadata"].pop("widgets", None)  # no saved widget views: every view on the page comes from this run
    yield from serve(tmp_path, NOTEBOOK.name, notebook, request.param)


WIDE_PAD_CELL = """import torch
from crossmodal.widgets import DrawingPad

torch.set_num_threads(2)
DrawingPad.for_numbers()  # the shipped reader of numbers"""


@pytest.fixture
def wide_pad_notebook(tmp_path):
    """A JupyterLab server on a temporary root holding a one-cell notebook, the wide pad with the shipped reader;
    yields the URL of the notebook."""
    from crossmodal.pretrained import shipped_dir

    READER_DIR = shipped_dir("reader")
    if not (READER_DIR / "config.json").is_file() and not os.environ.get("CI"):
        pytest.skip(f"no shipped reader of numbers yet ({READER_DIR})")
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": WIDE_PAD_CELL}
    notebook = {"cells": [cell], "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    yield from serve(tmp_path, "wide_pad.ipynb", notebook, "JupyterLab")


TWO_PADS_CELLS = [WIDE_PAD_CELL, "DrawingPad.for_numbers()  # a second pad, lower on the page",
                  "print('a cell below the pads')"]


@pytest.fixture
def two_pads_notebook(tmp_path):
    """A JupyterLab server on a temporary root holding a notebook with two wide pads and a cell below them."""
    from crossmodal.pretrained import shipped_dir

    if not (shipped_dir("reader") / "config.json").is_file() and not os.environ.get("CI"):
        pytest.skip("no shipped reader of numbers yet")
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
             for source in TWO_PADS_CELLS]
    notebook = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    yield from serve(tmp_path, "two_pads.ipynb", notebook, "JupyterLab")


def serve(tmp_path, name, notebook, front_end):
    """Run `front_end`'s server on tmp_path/root holding `notebook` (a dict) as `name`; yield the URL that opens
    it, then stop the server."""
    root, home = tmp_path / "root", tmp_path / "jupyter"
    root.mkdir()
    (root / name).write_text(json.dumps(notebook))
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')  # no "get notified about Jupyter news?" toast over the page
    port, token = free_port(), "crossmodal-browser-test"
    env = {**os.environ,  # keeps CROSSMODAL_DATA, so the notebook finds MNIST
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_CONFIG_DIR": str(home / "config")}
    log = open(tmp_path / "jupyter.log", "w")
    (module, *options), path = FRONT_ENDS[front_end]
    server = subprocess.Popen(
        [sys.executable, "-m", module, "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", *options],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{front_end} did not start; its log:\n{(tmp_path / 'jupyter.log').read_text()}")
                time.sleep(0.3)
        yield f"{url}/{path}/{name}?token={token}"
    finally:
        try:  # a clean shutdown: kernels first, then the server
            request = urllib.request.Request(f"{url}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=10)
            server.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            server.terminate()
            server.wait(timeout=10)
        log.close()


def draw(page, canvas, points):
    """One stroke with the mouse through `points`, given as fractions of the canvas (x right, y down)."""
    box = canvas.bounding_box()
    at = lambda x, y: (box["x"] + x * box["width"], box["y"] + y * box["height"])  # noqa: E731
    page.mouse.move(*at(*points[0]))
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(*at(x, y), steps=12)
    page.mouse.up()


KERNEL_IDLE = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return kernel && kernel.status === "idle";
}"""


@contextmanager
def browser_page():
    """A Chromium page of 1280 × 1000 (CHROMIUM, no sandbox, no GPU), closed afterwards."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 1000})
        finally:
            browser.close()


def run_notebook(page, url):
    """Open the notebook at `url`, run all its cells, wait until they have run; returns the first pad."""
    problems = []  # the page's own errors: why a widget did not render, if it did not
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    pad = page.locator(".crossmodal-pad").first
    errors = page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")
    deadline = time.monotonic() + 150
    while not pad.locator("canvas.cm-canvas").is_visible():  # the pad's cell has run
        if errors.count():
            pytest.fail(f"a notebook cell failed:\n{errors.first.inner_text()}")
        assert time.monotonic() < deadline, f"the drawing pad never appeared; errors on the page: {problems or 'none'}"
        page.wait_for_timeout(500)
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)  # every cell has run
    assert not errors.count(), f"a notebook cell failed:\n{errors.first.inner_text()}"
    return pad


def test_drawing_a_one_then_a_seven(notebook_06, request):
    slug = request.node.callspec.id.replace(" ", "-").lower()  # jupyterlab or notebook-7
    started = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        pad = run_notebook(page, notebook_06)
        canvas, caption = pad.locator("canvas.cm-canvas"), pad.locator(".cm-caption")
        strip = pad.locator("img.cm-strip")
        explorer = page.locator(".crossmodal-explorer").first  # the explorer renders too
        explorer.scroll_into_view_if_needed()
        expect(explorer.locator("img")).to_be_visible()
        assert explorer.locator("img").evaluate("img => img.naturalWidth") > 0
        explorer.screenshot(path=str(ARTIFACTS / f"explorer-{slug}.png"))
        canvas.scroll_into_view_if_needed()
        expect(caption).to_contain_text("Draw a digit")  # the prompt, not a caption of an empty canvas
        expect(strip).to_be_hidden()

        draw(page, canvas, [(0.5, 0.15), (0.5, 0.85)])  # a "1": one vertical stroke
        expect(caption).to_have_text("This is the number one.", timeout=30_000)
        expect(strip).to_be_visible()
        after_one = strip.screenshot()
        assert pad.locator("img.cm-seen").evaluate("img => img.naturalWidth") == 28  # the model's own input

        pad.locator("button.cm-clear").click()
        expect(caption).to_contain_text("Draw a digit", timeout=30_000)
        draw(page, canvas, [(0.22, 0.18), (0.78, 0.18), (0.42, 0.86)])  # a "7": bar, then stem, one stroke
        expect(caption).to_have_text("This is the number seven.", timeout=30_000)
        expect(strip).to_be_visible()
        after_seven = strip.screenshot()
        assert after_seven != after_one, "the attention strip did not change with the drawing"

        screenshot = ARTIFACTS / f"drawing_pad-{slug}.png"
        pad.screenshot(path=str(screenshot))
        print(f"screenshots: {screenshot}, {ARTIFACTS / f'explorer-{slug}.png'}; "
              f"browser test took {time.monotonic() - started:.0f} s")


def test_writing_seventy_one_on_the_wide_pad_in_jupyterlab(wide_pad_notebook):
    started = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with browser_page() as page:
        pad = run_notebook(page, wide_pad_notebook)
        canvas, caption = pad.locator("canvas.cm-canvas"), pad.locator(".cm-caption")
        strip = pad.locator("img.cm-strip")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box["width"] / box["height"] == pytest.approx(4, rel=0.02)  # the reader's 28 × 112, on screen
        expect(caption).to_contain_text("Write a number")
        expect(strip).to_be_hidden()

        draw(page, canvas, [(0.36, 0.18), (0.47, 0.18), (0.40, 0.84)])  # a "7" left of the middle
        expect(strip).to_be_visible(timeout=30_000)
        expect(caption).to_have_text("7", timeout=30_000)  # read at the stroke's end
        draw(page, canvas, [(0.56, 0.15), (0.56, 0.85)])  # then a "1" to its right
        expect(caption).to_have_text("71", timeout=30_000)
        seen = pad.locator("img.cm-seen")
        assert seen.evaluate("img => [img.naturalHeight, img.naturalWidth]") == [28, 112]  # the model's input
        two_rows = [2 * (84 + 18) + 4, 336]  # one map per digit, each over the whole 28 × 112 input, zoomed 3×
        page.wait_for_function("([img, size]) => img.complete && img.naturalHeight === size[0] "
                               "&& img.naturalWidth === size[1]", arg=[strip.element_handle(), two_rows])

        screenshot = ARTIFACTS / "wide_pad.png"
        pad.screenshot(path=str(screenshot))
        print(f"screenshot: {screenshot}; browser test took {time.monotonic() - started:.0f} s")


def test_the_lower_of_two_pads_stays_under_the_pen(two_pads_notebook):
    """The page must not scroll while the learner draws: the first answer used to grow the output, and with the
    notebook scrolled and a control below the canvas focused, the browser scrolled by the growth, sliding the canvas
    away under the pen."""
    with browser_page() as page:
        run_notebook(page, two_pads_notebook)
        pad = page.locator(".crossmodal-pad").nth(1)
        canvas, caption = pad.locator("canvas.cm-canvas"), pad.locator(".cm-caption")
        # A control below the canvas has focus: the editor of the cell below, as when the learner was typing there.
        # The browser keeps a focused editable element in place when the page above it grows (scroll anchoring).
        page.locator(".jp-Cell").nth(2).locator(".cm-content").click()
        expect(page.locator(".jp-Cell").nth(2).locator(".cm-content")).to_be_focused()
        canvas.evaluate("c => c.scrollIntoView({block: 'center'})")  # the notebook is scrolled: this pad mid-page
        page.wait_for_timeout(300)
        before = canvas.bounding_box()
        draw(page, canvas, [(0.36, 0.18), (0.47, 0.18), (0.40, 0.84)])  # a "7"
        expect(caption).to_have_text("7", timeout=30_000)
        page.wait_for_timeout(300)  # the answer's images are in place
        after_first = canvas.bounding_box()
        draw(page, canvas, [(0.56, 0.15), (0.56, 0.85)])  # a "1": where the learner aims, if nothing moved
        expect(caption).to_have_text("71", timeout=30_000)
        page.wait_for_timeout(300)
        after_second = canvas.bounding_box()
        assert abs(after_first["y"] - before["y"]) <= 2, f"the first answer moved the canvas by " \
            f"{after_first['y'] - before['y']:.0f} px"
        assert abs(after_second["y"] - before["y"]) <= 2, f"the second answer moved the canvas by " \
            f"{after_second['y'] - before['y']:.0f} px"
