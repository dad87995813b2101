"""Prometheus's own web UI in a real headless Chromium: one graph panel per expression, screenshotted.

usage: prometheus_graph.py BASE_URL OUT_PNG RANGE EXPR LEGEND [EXPR LEGEND ...]

Opens BASE_URL/classic/graph (the UI Debian's prometheus package serves; its React UI is not
packaged) with a panel per expression over the last RANGE (e.g. 1m), waits until every panel has
drawn a line and its legend lists a series whose labels contain LEGEND, then saves OUT_PNG and the
page source beside it. Prints one JSON line: the legend entries of each panel. Every wait is for a
DOM condition (60 s hang guard), never a sleep. Exits 1 with the reason when a condition is not met.
"""
import json
import os
import sys
import urllib.parse

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

LEGENDS = """
return Array.from(document.querySelectorAll('.graph_wrapper')).map(w => ({
  paths: w.querySelectorAll('.graph_area svg path').length,
  legend: Array.from(w.querySelectorAll('.legend .line .label')).map(l => l.textContent),
  error: (w.querySelector('.error') || {textContent: ''}).textContent.trim(),
}));
"""


def main():
    base, out, window, rest = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], sys.argv[4:]
    if not rest or len(rest) % 2:
        sys.exit(__doc__)
    panels = list(zip(rest[0::2], rest[1::2]))
    query = {}
    expected = []
    for index, (expression, legend) in enumerate(panels):
        query.update({f"g{index}.expr": expression, f"g{index}.tab": "0", f"g{index}.range_input": window})
        expected.append(legend)
    url = f"{base}/classic/graph?{urllib.parse.urlencode(query)}"

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    height = 300 + 720 * len(panels)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size=1366,{height}", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    state = []
    try:
        driver.get(url)

        def drawn(d):
            nonlocal state
            state = d.execute_script(LEGENDS)
            return len(state) == len(panels) and all(
                s["paths"] > 0 and any(e in label for label in s["legend"]) for s, e in zip(state, expected))

        try:
            WebDriverWait(driver, 60, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(drawn)
        except Exception:
            sys.exit(f"prometheus_graph: the graphs at {url} did not draw the expected series {expected}: {state}")
        driver.save_screenshot(out)
        with open(os.path.splitext(out)[0] + ".html", "w") as f:
            f.write(driver.page_source)
    finally:
        driver.quit()
    print(json.dumps({"url": url, "panels": [s["legend"] for s in state]}))


if __name__ == "__main__":
    main()
