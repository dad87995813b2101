"""The dashboard in a real headless Chromium, over real data (scripts/test.sh sets everything up).

Environment: DASH_URL (open, loopback, with DASH_TRACE_URL as its --trace-url), DASH_TOKEN_URL and DASH_TOKEN (a token-protected instance),
DASH_RO_URL (a --read-only instance), REDIS_PORT (the private redis-server), SEED_JSON (what airlock-dashboard-seed seeded), ARTIFACTS
(where screenshots and page sources go). Every wait is for a DOM or Redis condition, never a sleep.
Ends with the line "N passed, M failed"; exits 1 when anything failed.
"""
import base64
import json
import os
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["DASH_URL"].rstrip("/")
TOKEN_URL = os.environ["DASH_TOKEN_URL"].rstrip("/")
TOKEN = os.environ["DASH_TOKEN"]
READ_ONLY_URL = os.environ["DASH_RO_URL"].rstrip("/")
TRACE_URL = os.environ["DASH_TRACE_URL"]
REDIS_PORT = os.environ["REDIS_PORT"]
ARTIFACTS = os.environ["ARTIFACTS"]
with open(os.environ["SEED_JSON"]) as f:
    SEED = json.loads(f.read().strip().splitlines()[-1])
NS = SEED["namespace"]


def redis(*args):
    out = subprocess.run(["redis-cli", "-p", REDIS_PORT, "--raw", *args], check=True, capture_output=True, text=True)
    return out.stdout


def redis_int(*args):
    return int(redis(*args).strip())


def dead_total():
    queues = redis("SMEMBERS", f"{NS}:queues").split()
    return sum(redis_int("LLEN", f"{NS}:{{{q}}}:dead") for q in queues)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1366,900", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait(driver, condition, what, timeout=20):
    try:
        # A click that submits a form replaces the page: an element found on the old one goes stale, and
        # the new one may not be there yet. Both mean "not yet", so the condition is tried again.
        ignored = (NoSuchElementException, StaleElementReferenceException)
        return WebDriverWait(driver, timeout, ignored_exceptions=ignored).until(lambda d: condition(d))
    except Exception as error:
        raise AssertionError(f"timed out waiting for {what}") from error


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def number(value):
    return int(value.replace(",", "").split(" ")[0])


def save(driver, name):
    driver.save_screenshot(os.path.join(ARTIFACTS, f"{name}.png"))
    with open(os.path.join(ARTIFACTS, f"{name}.html"), "w") as f:
        f.write(driver.page_source)


def http(method, path, base=URL, data=None, headers=None):
    request = urllib.request.Request(base + path, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def no_script_ran(driver):
    """No script from job content ran: no alert is open, nothing set the marker the hostile content
    would set, and no element of its markup made it into the DOM."""
    try:
        alert = driver.switch_to.alert
        raise AssertionError(f"an alert is open: {alert.text!r}")
    except NoAlertPresentException:
        pass
    assert driver.execute_script("return window.__pwned === undefined"), "a script from job content ran"
    injected = driver.execute_script(
        "return Array.from(document.querySelectorAll('script:not([src]), img[src=x], svg[onload], [onerror], [onload], b, i:not([class])'))"
        ".map(e => e.outerHTML)")
    assert injected == [], f"elements from job content: {injected}"


# --- the checks -------------------------------------------------------------------------------

def test_overview_shows_the_real_figures_and_refreshes_live(d):
    d.get(URL + "/")
    wait(d, lambda d: text(d, "ov-workers") == "1", "one live worker on the overview")
    assert number(text(d, "ov-dead")) == dead_total(), (text(d, "ov-dead"), dead_total())
    assert number(text(d, "ov-hour-processed")) >= SEED["mail_processed"], (text(d, "ov-hour-processed"), SEED["mail_processed"])
    assert number(text(d, "ov-hour-failed")) >= 5, text(d, "ov-hour-failed")
    assert "paused" in text(d, "ov-queues")
    points = d.find_element(By.ID, "chart-processed").get_attribute("points").split(" ")
    assert len(points) == 3600, len(points)
    recent = d.find_element(By.ID, "recent-processed").get_attribute("points").split(" ")
    assert len(recent) == 300, len(recent)
    assert any(int(p.split(",")[1]) < 1000 for p in recent), "the last five minutes show the seeded traffic"
    assert d.find_element(By.ID, "outbox-card").is_displayed()
    # The script runs under the page's CSP and rewrites figures from the live feed.
    wait(d, lambda d: text(d, "live-status").startswith("live · updated"), "a live refresh")
    no_script_ran(d)
    save(d, "overview")


def test_queues_page_counts_match_redis_and_pause_resume_works(d):
    d.get(URL + "/queues")
    billing_dead = redis_int("LLEN", f"{NS}:{{billing}}:dead")
    wait(d, lambda d: number(text(d, "q-billing-dead")) == billing_dead, "billing's dead count")
    assert text(d, "q-default-paused") == "paused"
    assert number(text(d, "q-default-ready")) == redis_int("LLEN", f"{NS}:{{default}}:ready") == 5
    assert number(text(d, "q-reports-delayed")) == redis_int("ZCARD", f"{NS}:{{reports}}:delayed")
    save(d, "queues")
    # Resume the paused queue from the page (no worker consumes it, so its jobs stay), then pause it again.
    row = d.find_element(By.CSS_SELECTOR, 'tr[data-queue="default"]')
    row.find_element(By.CSS_SELECTOR, "button.resume").click()
    wait(d, lambda d: "queue resumed" in text(d, "notice"), "the resume notice")
    assert redis_int("EXISTS", f"{NS}:{{default}}:paused") == 0
    d.find_element(By.CSS_SELECTOR, 'tr[data-queue="default"] button.pause').click()
    wait(d, lambda d: "queue paused" in text(d, "notice"), "the pause notice")
    assert redis_int("EXISTS", f"{NS}:{{default}}:paused") == 1


def test_workers_page_shows_the_live_worker(d):
    d.get(URL + "/workers")
    worker = SEED["live_worker"]
    wait(d, lambda d: text(d, f"w-{worker}-status") == "alive", "the live worker's status")
    row = d.find_element(By.XPATH, f"//tr[th/code[text()='{worker}']]")
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert "mail, reports" in cells, cells
    assert text(d, f"w-{worker}-heartbeat").endswith("ago")
    save(d, "workers")


def test_delayed_page_lists_retrying_and_scheduled_jobs(d):
    d.get(URL + "/delayed")
    body = d.find_element(By.ID, "delayed").text
    assert SEED["retrying_id"] in body and SEED["scheduled_id"] in body, body
    assert "upstream 503 <i>temporarily</i> unavailable" in body, "the last error is shown as text"
    assert not d.find_elements(By.CSS_SELECTOR, "#delayed td i"), "no markup from the error"
    save(d, "delayed")


def test_dead_letter_search_and_hostile_content_render_as_text(d):
    d.get(URL + "/dead")
    total = dead_total()
    wait(d, lambda d: d.find_element(By.ID, "dead-total").get_attribute("data-total") == str(total), "the dead-letter total")
    # Search by task in the form, as an operator would.
    field = d.find_element(By.NAME, "task")
    field.clear()
    field.send_keys("billing.charge")
    d.find_element(By.ID, "dead-search-button").click()
    wait(d, lambda d: d.find_element(By.ID, "dead-total").get_attribute("data-total") == "3", "three billing.charge dead letters")
    errors = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#dead td.error")]
    assert all("<script>window.__pwned = 1</script>" in e for e in errors), errors
    assert all("\\x1b[31mRED" in e for e in errors), "terminal controls are shown escaped"
    assert all('<img src=x onerror="window.__pwned=2">' in e for e in errors), "quotes are text, not an attribute"
    assert not d.find_elements(By.CSS_SELECTOR, "#dead td.error script, #dead td.error img")
    no_script_ran(d)
    save(d, "dead-search")
    # Search by error text across every queue.
    d.get(URL + "/dead?error=" + urllib.parse.quote("gateway timeout"))
    assert d.find_element(By.ID, "dead-total").get_attribute("data-total") == "1"


def test_a_hostile_task_name_and_envelope_are_text(d):
    d.get(URL + "/dead/show?id=" + urllib.parse.quote(SEED["hostile_id"]))
    task = text(d, "letter-task")
    assert "billing.<b>charge</b>" in task and "<script>window.__pwned=3</script>" in task, task
    assert not d.find_elements(By.CSS_SELECTOR, "#letter-task b, #letter-task script")
    envelope = text(d, "envelope")
    assert '"note": "<svg onload=alert(1)>"' in envelope, envelope
    assert '\n  "id": ' in envelope, "indented JSON, one field a line"
    assert not d.find_elements(By.CSS_SELECTOR, "#envelope svg")
    no_script_ran(d)
    save(d, "dead-letter")


def test_clicking_retry_puts_the_dead_job_back_on_its_queue(d):
    job = SEED["charge_ids"][0]
    assert job not in redis("LRANGE", f"{NS}:{{billing}}:ready", "0", "-1")
    before = redis_int("LLEN", f"{NS}:{{billing}}:dead")
    d.get(URL + "/dead?task=billing.charge")
    d.find_element(By.CSS_SELECTOR, f'button.retry[data-id="{job}"]').click()
    wait(d, lambda d: "1 dead letter moved back to its queue" in text(d, "notice"), "the retry notice")
    ready = redis("LRANGE", f"{NS}:{{billing}}:ready", "0", "-1")
    assert job in ready, ready
    assert json.loads(ready.strip().splitlines()[0])["attempt"] == 0
    assert redis_int("LLEN", f"{NS}:{{billing}}:dead") == before - 1
    assert d.find_element(By.ID, "dead-total").get_attribute("data-total") == "2"
    save(d, "dead-after-retry")
    # Where is it now?
    d.find_element(By.NAME, "id").send_keys(job)
    d.find_element(By.CSS_SELECTOR, "form.finder button").click()
    wait(d, lambda d: "ready on queue billing" in text(d, "job-result"), "the job page")
    assert "0 jobs ahead of it" in text(d, "job-result")
    save(d, "job")


def test_a_traced_jobs_pages_show_its_trace_id_linked(d):
    trace_id = SEED["trace_id"]
    assert len(trace_id) == 32, SEED
    link = TRACE_URL.replace("{trace_id}", trace_id)
    for path in ("/dead/show?id=", "/job?id="):
        d.get(URL + path + urllib.parse.quote(SEED["traced_id"]))
        element = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, ".trace code.trace-id"), f"the trace id on {path}")
        assert element.text == trace_id, (element.text, trace_id)
        assert d.find_element(By.CSS_SELECTOR, ".trace a.trace-link").get_attribute("href") == link
    assert "dead on queue billing" in text(d, "job-result")
    no_script_ran(d)
    save(d, "job-trace")


def test_the_recorded_trace_from_a_web_request_into_its_job(d):
    """The waterfall TraceTests (the Swift suite, just before) wrote from the spans the in-memory
    tracer recorded: a POST to a Hummingbird app, the flush, and the two attempts of the job."""
    path = os.path.join(ARTIFACTS, "trace-waterfall.html")
    assert os.path.exists(path), f"{path} is missing: the Swift suite's TraceTests writes it"
    d.get("file://" + path)
    rows = d.find_elements(By.CSS_SELECTOR, "tr.span")
    spans = [{"trace": r.get_attribute("data-trace-id"), "id": r.get_attribute("data-span-id"),
              "parent": r.get_attribute("data-parent-id"), "name": r.find_element(By.CSS_SELECTOR, "td.name").text} for r in rows]
    trace_id = text(d, "trace-id")
    assert len(spans) == 4 and all(s["trace"] == trace_id for s in spans), spans
    request, flush, first, second = spans
    assert request["name"].endswith("/signup") and request["parent"] == "", request
    assert flush["name"].endswith("airlock.flush") and flush["parent"] == request["id"], flush
    for run in (first, second):
        assert run["name"].endswith("airlock.run mail.welcome") and run["parent"] == flush["id"], run
    assert "<script>window.__pwned = 5</script>" in d.find_element(By.CSS_SELECTOR, "tr.failed .error").text
    no_script_ran(d)
    save(d, "trace-waterfall")


def test_a_post_without_the_csrf_token_is_403(d):
    form = urllib.parse.urlencode({"ids": SEED["charge_ids"][1]}).encode()
    status, _ = http("POST", "/dead/retry", data=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403, status
    # The browser's own session cookie, but a forged field: still 403.
    d.get(URL + "/dead")
    cookie = d.get_cookie("airlock_csrf")
    assert cookie and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict", cookie
    forged = urllib.parse.urlencode({"ids": SEED["charge_ids"][1], "_csrf": "0" * 64}).encode()
    status, _ = http("POST", "/dead/retry", data=forged, headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"airlock_csrf={cookie['value']}"})
    assert status == 403, status
    assert SEED["charge_ids"][1] not in redis("LRANGE", f"{NS}:{{billing}}:ready", "0", "-1"), "nothing moved"


def test_no_token_when_one_is_required_is_401(d):
    status, _ = http("GET", "/", base=TOKEN_URL)
    assert status == 401, status
    status, _ = http("GET", "/", base=TOKEN_URL, headers={"Authorization": "Basic " + base64.b64encode(b"ops:wrong-token-wrong").decode()})
    assert status == 401, status
    status, body = http("GET", "/queues", base=TOKEN_URL, headers={"Authorization": "Basic " + base64.b64encode(f"ops:{TOKEN}".encode()).decode()})
    assert status == 200 and "q-billing-dead" in body, status
    status, _ = http("GET", "/live/overview", base=TOKEN_URL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, status
    # A browser with the credentials renders the page.
    host = TOKEN_URL.split("://", 1)[1]
    d.get(f"http://ops:{TOKEN}@{host}/workers")
    wait(d, lambda d: SEED["live_worker"] in d.page_source, "the token-protected workers page")


def test_a_browser_post_with_the_csrf_field_removed_is_refused(d):
    job = SEED["charge_ids"][1]
    before = redis_int("LLEN", f"{NS}:{{billing}}:dead")
    d.get(URL + "/dead?task=billing.charge")
    button = d.find_element(By.CSS_SELECTOR, f'button.retry[data-id="{job}"]')
    # The page's own form, with its hidden token taken out: what a forged cross-site form would send.
    removed = d.execute_script(
        "const f = document.getElementById(arguments[0].getAttribute('form'));"
        "const t = f.querySelector('input[name=_csrf]'); t.remove(); return f.querySelectorAll('input[name=_csrf]').length",
        button)
    assert removed == 0
    button.click()
    wait(d, lambda d: "CSRF token" in d.find_element(By.TAG_NAME, "body").text, "the refusal")
    assert redis_int("LLEN", f"{NS}:{{billing}}:dead") == before, "nothing moved"
    assert job not in redis("LRANGE", f"{NS}:{{billing}}:ready", "0", "-1")
    save(d, "csrf-refused")


def test_read_only_hides_every_action_and_refuses_posts(d):
    d.get(READ_ONLY_URL + "/dead?task=billing.charge")
    assert text(d, "read-only") == "read-only"
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#dead tr.dead-letter"), "the dead letters, read-only")
    forbidden = "form[method=post], button.retry, button.delete, #retry-selected, #retry-matching, input[type=checkbox]"
    assert not d.find_elements(By.CSS_SELECTOR, forbidden), "an action on the read-only dead page"
    for path in ("/", "/delayed", "/dead/show?id=" + urllib.parse.quote(SEED["charge_ids"][2]), "/queues"):
        d.get(READ_ONLY_URL + path)
        assert not d.find_elements(By.CSS_SELECTOR, forbidden + ", button.pause, button.resume"), f"an action on {path}"
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-queue="billing"]'), "the read-only queues page")
    save(d, "read-only-queues")
    no_script_ran(d)
    # A well-formed POST (the session's cookie and the same token in the form) is still refused.
    opener = urllib.request.build_opener()
    with opener.open(READ_ONLY_URL + "/dead") as response:
        cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    token = cookie.split("=", 1)[1]
    job = SEED["charge_ids"][2]
    before = redis_int("LLEN", f"{NS}:{{billing}}:dead")
    form = urllib.parse.urlencode({"ids": job, "_csrf": token}).encode()
    for path in ("/dead/retry", "/dead/delete", "/queues/pause"):
        status, body = http("POST", path, base=READ_ONLY_URL, data=form, headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        assert status == 403 and "read-only" in body, (path, status, body)
    assert redis_int("LLEN", f"{NS}:{{billing}}:dead") == before, "nothing moved"


TESTS = [value for name, value in list(globals().items()) if name.startswith("test_")]


def main():
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver = browser()
    passed, failed = 0, 0
    try:
        for test in TESTS:
            started = time.monotonic()
            try:
                test(driver)
                passed += 1
                print(f"ok   {test.__name__} ({time.monotonic() - started:.1f}s)", flush=True)
            except Exception:
                failed += 1
                print(f"FAIL {test.__name__}", flush=True)
                traceback.print_exc()
                try:
                    save(driver, "failed-" + test.__name__)
                except Exception:
                    pass
    finally:
        driver.quit()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
