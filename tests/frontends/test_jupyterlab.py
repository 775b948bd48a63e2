"""JupyterLab in a real browser drives kernelkit kernels.

One JupyterLab server (token, free port, temporary root and settings) and one headless
Debian ``chromium`` driven by Playwright are shared by the module. Each test opens Lab in a
fresh workspace, picks a kernel by its display name on the Launcher, types cells and checks
what Lab renders: stream text, an HTML table, a PNG image, an error traceback, an ``input()``
box, then interrupts and restarts the kernel from the toolbar. Screenshots go to
``test-artifacts/test_jupyterlab/``.

Playwright is used as a library only: the browser is the system's ``/usr/bin/chromium``
(``apt-get install chromium``); no browser is ever downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import install_kernelspec
from frontend_kit import (FRONTEND_KERNELS, SHOWCASE, FrontendKernel, Server, artifact_path, free_port, http_json,
                          kernel_ids)
from playwright.sync_api import BrowserContext, Locator, Page, expect, sync_playwright

pytestmark = pytest.mark.slow  # more than ~3 s a test: a JupyterLab server and a headless browser

CHROMIUM = os.environ.get("KERNELKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UI_TIMEOUT = 60_000  # ms for anything Lab shows after a kernel round trip
expect.set_options(timeout=UI_TIMEOUT)
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "jupyterlab.png"
SQLITE_SCREENSHOT = README_SCREENSHOT.with_name("sqlite-jupyterlab.png")
SQLITE_DISPLAY_NAME = "SQLite (kernelkit)"
install_kernelspec("kk-lab-sqlite", argv=[sys.executable, "-m", "kernelkit_launcher", "kernelkit.kernels.sqlite", "-f",
                                          "{connection_file}"], display_name=SQLITE_DISPLAY_NAME, language="sql")

# Lab's user settings for the tests: no "get notified about Jupyter news?" toast, no update check.
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                                    "checkForUpdates": False}}


@dataclass
class Lab:
    url: str
    token: str

    def api(self, method: str, path: str) -> tuple[int, object]:
        return http_json(method, f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    token = uuid.uuid4().hex
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="kernelkit-lab-"))
    root, settings, workspaces = work / "root", work / "settings", work / "workspaces"
    for folder in (root, settings, workspaces):
        folder.mkdir()
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    # The interpreter's own JupyterLab (its labextensions: ipywidgets), not the first `jupyter-lab` on PATH.
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}", "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        argv.append("--allow-root")  # CI runs as root
    server = Server(argv, log_path=artifact_path("test_jupyterlab", "jupyterlab.log"), cwd=root,
                    env={"JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(workspaces)})
    lab = Lab(f"http://127.0.0.1:{port}", token)
    try:
        server.wait_http(f"{lab.url}/api/status", headers={"Authorization": f"token {token}"}, timeout=90)
        yield lab
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def browser_context() -> Iterator[BrowserContext]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; scripts/test does)")
    profile = tempfile.mkdtemp(prefix="kernelkit-chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(UI_TIMEOUT)
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(lab: Lab, browser_context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """Lab in a fresh workspace; on the way out, a screenshot and every kernel shut down."""
    page = browser_context.new_page()
    workspace = f"w{uuid.uuid4().hex[:8]}"
    page.goto(f"{lab.url}/lab/workspaces/{workspace}?reset&token={lab.token}")
    page.locator(".jp-LauncherCard").first.wait_for()
    try:
        yield page
    finally:
        try:
            page.screenshot(path=artifact_path("test_jupyterlab", f"{request.node.name}-final.png"))
        finally:
            page.close()
            status, kernels = lab.api("GET", "/api/kernels")
            for kernel in kernels if status == 200 else []:
                lab.api("DELETE", f"/api/kernels/{kernel['id']}")


# ---- driving the notebook ------------------------------------------------------------------


def open_notebook(page: Page, display_name: str) -> Locator:
    """Click the Launcher's Notebook card with this display name; returns the notebook panel."""
    page.locator(f'.jp-LauncherCard[data-category="Notebook"][title="{display_name}"]').click()
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel.locator(".jp-Toolbar-kernelName")).to_contain_text(display_name)
    wait_idle(panel)
    return panel


def wait_idle(panel: Locator) -> None:
    expect(panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')).to_have_count(1)


def run_cell(page: Page, panel: Locator, code: str) -> Locator:
    """Type ``code`` into the last cell and run it with Shift+Enter; returns that cell."""
    cells = panel.locator(".jp-Notebook .jp-CodeCell")
    cell = cells.nth(cells.count() - 1)
    cell.locator(".cm-content").click()
    page.keyboard.insert_text(code)  # as pasted text: no auto-indent or bracket closing to undo
    page.keyboard.press("Shift+Enter")
    return cell


def outputs(cell: Locator) -> Locator:
    return cell.locator(".jp-OutputArea-output")


def toolbar_button(panel: Locator, command: str) -> Locator:
    return panel.locator(f'.jp-Toolbar [data-command="{command}"]').first


# ---- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", FRONTEND_KERNELS, ids=kernel_ids(FRONTEND_KERNELS))
def test_pick_kernel_by_display_name_and_run(kernel: FrontendKernel, page: Page) -> None:
    panel = open_notebook(page, kernel.display_name)
    cell = run_cell(page, panel, kernel.sample_code)
    expect(outputs(cell)).to_have_text(kernel.sample_output.rstrip("\n"))
    expect(cell.locator(".jp-InputPrompt")).to_contain_text("[1]")
    page.screenshot(path=artifact_path("test_jupyterlab", f"{kernel.name}-sample.png"))


def test_showcase_rich_output_input_interrupt_restart(page: Page) -> None:
    panel = open_notebook(page, SHOWCASE.display_name)

    cell = run_cell(page, panel, "print('hello from kernelkit')\n6 * 7")
    expect(outputs(cell).first).to_have_text("hello from kernelkit")
    expect(cell.locator(".jp-OutputArea-executeResult")).to_contain_text("42")

    cell = run_cell(page, panel, "table([['echo', 'text'], ['showcase', 'python']], header=['kernel', 'language'])")
    table = outputs(cell).locator("table")
    expect(table.locator("th")).to_have_text(["kernel", "language"])
    expect(table.locator("td")).to_have_text(["echo", "text", "showcase", "python"])

    cell = run_cell(page, panel, "png()")
    image = outputs(cell).locator("img")
    expect(image).to_be_visible()
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert image.evaluate("img => img.complete && [img.naturalWidth, img.naturalHeight]") == [96, 64]

    cell = run_cell(page, panel, "def fail():\n    return 1 / 0\nfail()")
    error = cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    expect(error).to_contain_text("ZeroDivisionError")
    expect(error).to_contain_text("division by zero")
    expect(error).to_contain_text("in fail")
    page.screenshot(path=artifact_path("test_jupyterlab", "showcase-outputs.png"))

    # input(): Lab shows a text box under the cell; the answer goes back over stdin.
    cell = run_cell(page, panel, "name = input('Your name? ')\nprint('Hello,', name)")
    box = cell.locator(".jp-Stdin-input")
    box.fill("Ada")
    page.screenshot(path=artifact_path("test_jupyterlab", "showcase-input.png"))
    box.press("Enter")
    expect(outputs(cell).last).to_contain_text("Hello, Ada")
    expect(outputs(cell).first).to_contain_text("Your name? Ada")

    # Interrupt a long cell from the toolbar.
    cell = run_cell(page, panel, "import time\ntime.sleep(120)")
    expect(cell.locator(".jp-InputPrompt")).to_contain_text("[*]")
    expect(panel.locator('.jp-Notebook-ExecutionIndicator[data-status="busy"]')).to_have_count(1)
    toolbar_button(panel, "notebook:interrupt-kernel").click()
    expect(outputs(cell)).to_contain_text("KeyboardInterrupt", timeout=20_000)
    wait_idle(panel)
    page.screenshot(path=artifact_path("test_jupyterlab", "showcase-interrupted.png"))

    # Restart from the toolbar: a fresh namespace, and counting starts again.
    toolbar_button(panel, "notebook:restart-kernel").click()
    page.locator(".jp-Dialog .jp-mod-accept").click()
    wait_idle(panel)
    cell = run_cell(page, panel, "'name' in dir()")
    expect(cell.locator(".jp-OutputArea-executeResult")).to_contain_text("False")
    expect(cell.locator(".jp-InputPrompt")).to_contain_text("[1]")
    page.screenshot(path=artifact_path("test_jupyterlab", "showcase-restarted.png"))
    if os.environ.get("KERNELKIT_UPDATE_README_SCREENSHOT"):
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifact_path("test_jupyterlab", "showcase-outputs.png"), README_SCREENSHOT)


WIDGETS_SCREENSHOT = README_SCREENSHOT.parent / "widgets.png"


def test_showcase_ipywidgets_slider_both_ways(page: Page) -> None:
    """An ipywidgets IntSlider in a kernelkit kernel: Lab draws it through the comm package, the
    slider moved in the browser changes the value in the kernel, and the kernel moves it back."""
    panel = open_notebook(page, SHOWCASE.display_name)
    cell = run_cell(page, panel, "import ipywidgets as w\ns = w.IntSlider(value=3, max=10, description='n')\n"
                                 "s.observe(lambda change: print('kernel saw', change['new']), 'value')\ndisplay(s)")
    slider = outputs(cell).locator(".widget-slider")
    expect(slider).to_be_visible()
    readout = slider.locator(".widget-readout")
    expect(readout).to_have_text("3")

    # Move the slider in the browser: keyboard on the handle, then a drag to the far right.
    handle = slider.locator(".noUi-handle")
    handle.focus()
    page.keyboard.press("ArrowRight")
    expect(readout).to_have_text("4")
    cell = run_cell(page, panel, "s.value")
    expect(cell.locator(".jp-OutputArea-executeResult .jp-OutputArea-output")).to_have_text("4")
    box, track = handle.bounding_box(), slider.locator(".noUi-target").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] + 40, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    expect(readout).to_have_text("10")
    cell = run_cell(page, panel, "s.value")
    expect(cell.locator(".jp-OutputArea-executeResult .jp-OutputArea-output")).to_have_text("10")

    # And the other way: the kernel sets the value, the slider in the page moves.
    run_cell(page, panel, "s.value = 7")
    expect(readout).to_have_text("7")
    wait_idle(panel)

    # An Output widget captures what a cell prints inside `with out:` (it asks the comm's kernel
    # for the current request; the frontend routes that request's output into the widget).
    cell = run_cell(page, panel, "out = w.Output(layout={'border': '1px solid #999'})\ndisplay(out)\n"
                                 "with out:\n    print('captured by the Output widget')\nprint('after')")
    expect(outputs(cell).locator(".widget-output")).to_contain_text("captured by the Output widget")
    expect(outputs(cell).last).to_have_text("after")
    wait_idle(panel)
    page.screenshot(path=artifact_path("test_jupyterlab", "showcase-widgets.png"))
    if os.environ.get("KERNELKIT_UPDATE_README_SCREENSHOT"):
        shutil.copyfile(artifact_path("test_jupyterlab", "showcase-widgets.png"), WIDGETS_SCREENSHOT)


def test_showcase_dataframe_and_matplotlib_figure(page: Page) -> None:
    """Rich display of any object without IPython: a DataFrame result is an HTML table, a figure a PNG."""
    panel = open_notebook(page, SHOWCASE.display_name)
    cell = run_cell(page, panel, "import pandas as pd\npd.DataFrame({'kernel': ['echo', 'showcase'], 'ms': [120, 130]})")
    table = cell.locator(".jp-OutputArea-executeResult table.dataframe")
    expect(table.locator("tbody th")).to_have_text(["0", "1"])
    expect(table.locator("td")).to_have_text(["echo", "120", "showcase", "130"])
    cell = run_cell(page, panel, "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
                                 "fig, ax = plt.subplots(figsize=(3, 2))\nax.plot([1, 3, 2])\ndisplay(fig)")
    image = outputs(cell).locator("img")
    expect(image).to_be_visible()
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert image.evaluate("img => img.complete && img.naturalWidth > 100")
    page.screenshot(path=artifact_path("test_jupyterlab", "showcase-objects.png"))


@pytest.mark.slow
def test_sqlite_kernel_tables_errors_and_interrupt(page: Page) -> None:
    """The sqlite showcase kernel in Lab: an HTML result table, a dot-command, an error naming its
    statement, a long query stopped from the toolbar. KERNELKIT_UPDATE_README_SCREENSHOT=1 refreshes
    docs/images/sqlite-jupyterlab.png, the README's picture."""
    panel = open_notebook(page, SQLITE_DISPLAY_NAME)
    cell = run_cell(page, panel, "CREATE TABLE planets (name TEXT, moons INTEGER, radius_km REAL);\n"
                    "INSERT INTO planets VALUES ('Mercury', 0, 2439.7), ('Venus', 0, 6051.8),\n"
                    "  ('Earth', 1, 6371.0), ('Mars', 2, 3389.5), ('Jupiter', 95, 69911.0);\n"
                    "SELECT name, moons, radius_km FROM planets\n WHERE radius_km > 3000 ORDER BY radius_km DESC;")
    table = outputs(cell).locator("table")
    expect(table.locator("th")).to_have_text(["name", "moons", "radius_km"])
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(table.locator("tbody tr").first.locator("td")).to_have_text(["Jupiter", "95", "69911.0"])
    expect(outputs(cell)).to_contain_text("4 rows")

    cell = run_cell(page, panel, ".schema planets")
    expect(outputs(cell)).to_contain_text("CREATE TABLE planets (name TEXT, moons INTEGER, radius_km REAL);")

    cell = run_cell(page, panel, "SELECT count(*) AS n FROM planets;\nSELECT avg(moons) FROM planet;")
    expect(outputs(cell).locator("table td")).to_have_text(["5"])
    error = cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    expect(error).to_contain_text("OperationalError: no such table: planet")
    expect(error).to_contain_text("in statement 2 of 2, line 2")
    page.screenshot(path=artifact_path("test_jupyterlab", "sqlite-outputs.png"))

    cell = run_cell(page, panel, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)\nSELECT count(*) FROM c;")
    expect(cell.locator(".jp-InputPrompt")).to_contain_text("[*]")
    expect(panel.locator('.jp-Notebook-ExecutionIndicator[data-status="busy"]')).to_have_count(1)
    toolbar_button(panel, "notebook:interrupt-kernel").click()
    expect(outputs(cell)).to_contain_text("KeyboardInterrupt", timeout=20_000)
    wait_idle(panel)
    if os.environ.get("KERNELKIT_UPDATE_README_SCREENSHOT"):
        SQLITE_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifact_path("test_jupyterlab", "sqlite-outputs.png"), SQLITE_SCREENSHOT)
