"""`make screenshots`: PNGs of the dashboard views for the README, from the default experiment.

Trains the default digits experiment into a temporary folder, serves it with a real `tensorboard`
on 127.0.0.1 and photographs, in Debian's headless Chromium, the addresses users open: the
address `init-loss-lab tensorboard` prints (Time Series on the cells' means), the HParams table,
parallel coordinates and scatter plot matrix, and the Custom Scalars bands.
Usage: python tests/screenshots.py OUT_FOLDER
"""

import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# tests/experiments/ mirrors the package `experiments` and would shadow it: this folder leaves the
# path, and the tests' helpers are loaded from their file
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
_SPEC = importlib.util.spec_from_file_location("rendered", HERE / "rendered.py")
rendered = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(rendered)

import experiments as lab  # noqa: E402
from experiments.records.events import bands_url, tensorboard_url  # noqa: E402


def _until(check, what, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.5)
    raise SystemExit(f"screenshots: timed out waiting for {what}")


def main(out):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        result = lab.run("digits_init_x_loss", output=work, progress=False)
        server = subprocess.Popen([str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(result.folder),
                                   "--host", "127.0.0.1", "--port", "0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            port = next(int(m.group(1)) for line in server.stderr
                        if (m := re.search(r"http://127\.0\.0\.1:(\d+)/", line)))
            hparams = f"http://127.0.0.1:{port}/#hparams"
            views = [("timeseries.png", tensorboard_url(port, "accuracy"),
                      lambda: len(rendered.tensorboard_cards(driver)) > 0),
                     ("hparams.png", hparams, lambda: len(rendered.hparams_cells(driver)) > 40),
                     ("parallel.png", hparams, lambda: rendered.click_tab(driver, "Parallel coordinates view")),
                     ("scatter.png", hparams, lambda: rendered.click_tab(driver, "Scatter plot matrix view")),
                     ("bands.png", bands_url(port), lambda: "Matches (18)" in rendered.margin_matches(driver))]
            for name, url, ready in views:
                driver.get("about:blank")  # the same address again would not reload the page
                driver.get(url)
                if "#hparams" in url:  # the table first, then the view's own check
                    _until(lambda: rendered.hparams_cells(driver), name)
                _until(ready, name)
                time.sleep(2)  # charts finish drawing
                driver.save_screenshot(str(out / name))
                print(f"screenshots: {out / name} ({url})")
        finally:
            driver.quit()
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments/docs")
