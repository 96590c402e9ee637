"""The web UI in a real headless Chromium, on runs executed by a real worker: a run's timeline
(tasks with properties, attempts and errors, the wait, logs, output), a failed run's error, the
page following a run live without a reload, the runs list's filters, and the token."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests
from playwright.sync_api import expect

from tests.core.ui.support import APP, ROOT, UIProcess, free_port
from trigger_celery import RunFailedError

pytestmark = pytest.mark.timeout(180)


def test_run_page_follows_a_run_live_then_shows_its_timeline(ui_client, ui_url, page):
    handle = ui_client.trigger("ui-triage", {"issue": 7, "seconds": 6})
    page.goto(f"{ui_url}/runs/{handle.id}")
    page.evaluate("window.__sameDocument = true")
    status = page.locator("#run-status")
    wait = page.locator('li.task[data-key="cool-down"] .wait-detail')

    # The wait appears with its resume time while the run waits...
    expect(wait).to_contain_text(re.compile(r"wait 6 s · resumes at \d\d:\d\d:\d\d\.\d{3} UTC"),
                                 timeout=30_000)
    expect(status).to_have_text("WAITING")
    expect(page.locator("#run-waiting")).to_contain_text("until")
    expect(page.locator("#live")).to_have_text("live")
    # ...then the completion, without a reload.
    expect(status).to_have_text("SUCCESS", timeout=40_000)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    expect(page.locator("#live")).to_have_text("finished")
    expect(wait).to_contain_text("resumed at")
    expect(page.locator("#run-waiting")).to_have_count(0)

    tasks = page.locator("li.task")
    assert tasks.evaluate_all("els => els.map(e => e.dataset.key)") == [
        "label", "comment", "cool-down", "react"]
    assert tasks.evaluate_all("els => els.map(e => e.dataset.status)") == ["COMPLETED"] * 4

    label = page.locator('li.task[data-key="label"]')
    expect(label).to_contain_text("Add labels")
    expect(label).to_contain_text("[github]")
    expect(label.locator(".props")).to_have_text("issue: #7")
    expect(label.locator(".params")).to_contain_text('"token": "[redacted]"')
    expect(label).to_contain_text('output ["bug", "triage"]')

    comment = page.locator('li.task[data-key="comment"]')
    expect(comment.locator(".attempts")).to_have_text("attempts 2")
    expect(comment.locator(".attempt-error")).to_have_count(1)
    expect(comment.locator(".attempt-error")).to_contain_text(
        "attempt 1 failed")
    expect(comment.locator(".attempt-error")).to_contain_text(
        "RuntimeError: 403 rate limit exceeded")
    expect(comment).to_contain_text("attempt 2 succeeded")

    logs = page.locator("#logs tr.log")
    expect(logs).to_have_count(2)
    expect(logs.nth(0).locator("td.lvl-info")).to_have_count(1)
    expect(logs.nth(0)).to_contain_text('labelled {"labels": ["bug", "triage"]}')
    expect(logs.nth(1).locator("td.lvl-warn")).to_have_count(1)
    expect(logs.nth(1)).to_contain_text("cooling down")
    expect(page.locator("#output pre")).to_contain_text('"comment_id": 42')
    expect(page.locator("#run-header")).to_contain_text("ui-triage@1.2.0")
    expect(page.locator("#run-header")).to_contain_text("4 / 4 completed")

    html = page.content()
    assert "s3cret" not in html  # redacted by the engine, and so never shown
    assert ui_client.settings.redis_url not in html  # no setting or environment shown


def test_failed_run_shows_its_error(ui_client, ui_url, page):
    handle = ui_client.trigger("ui-fails", {})
    with pytest.raises(RunFailedError):
        handle.result(timeout=60)
    page.goto(f"{ui_url}/runs/{handle.id}")
    expect(page.locator("#run-status")).to_have_text("FAILURE")
    expect(page.locator("#run-error")).to_contain_text("ZeroDivisionError")
    expect(page.locator("#run-error")).to_contain_text("division by zero")
    explode = page.locator('li.task[data-key="explode"]')
    expect(explode).to_have_attribute("data-status", "ERRORED")
    expect(explode.locator(".attempt-error")).to_have_count(2)
    expect(explode.locator(".task-error")).to_contain_text("ZeroDivisionError: division by zero")
    expect(page.locator("#logs td.lvl-error")).to_have_count(1)
    expect(page.locator("#output")).to_have_count(0)
    expect(page.locator("#live")).to_have_text("finished")


def test_unknown_run_is_a_404_page(ui_url, page):
    response = page.goto(f"{ui_url}/runs/no-such-run")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Run not found")


def test_runs_list_filters_and_updates_live(ui_client, ui_url, page):
    ok = ui_client.trigger("ui-triage", {"issue": 1, "seconds": 0.1})
    bad = ui_client.trigger("ui-fails", {})
    ok.result(timeout=60)
    with pytest.raises(RunFailedError):
        bad.result(timeout=60)

    page.goto(f"{ui_url}/")
    expect(page).to_have_url(re.compile(r"/runs$"))
    rows = page.locator("tr.run-row")
    expect(rows).to_have_count(2)
    expect(page.locator(f'tr.run-row[data-run="{ok.id}"]')).to_contain_text("SUCCESS")
    expect(page.locator(f'tr.run-row[data-run="{bad.id}"]')).to_contain_text("FAILURE")

    page.select_option('select[name="status"]', "FAILURE")  # submits the form
    expect(page).to_have_url(re.compile(r"status=FAILURE"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-run", bad.id)

    page.select_option('select[name="status"]', "")
    page.select_option('select[name="job"]', "ui-triage")
    expect(page).to_have_url(re.compile(r"job=ui-triage"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-run", ok.id)

    page.select_option('select[name="job"]', "")
    page.select_option('select[name="since"]', "15m")
    expect(page).to_have_url(re.compile(r"since=15m"))
    expect(rows).to_have_count(2)

    # A run started while the list is open appears without a reload.
    page.evaluate("window.__sameDocument = true")
    late = ui_client.trigger("ui-triage", {"issue": 2, "seconds": 0.1})
    expect(page.locator(f'tr.run-row[data-run="{late.id}"]')).to_have_count(1, timeout=20_000)
    assert page.evaluate("window.__sameDocument === true")

    page.locator(f'tr.run-row[data-run="{ok.id}"] a').click()
    expect(page).to_have_url(re.compile(rf"/runs/{ok.id}$"))
    expect(page.locator("#run-status")).to_have_text("SUCCESS")


def test_ui_refuses_a_public_address_without_a_token(worker_env):
    env = {k: v for k, v in worker_env.items() if k != "TRIGGER_CELERY_UI_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "trigger_celery.cli", "--app", f"{APP}:client", "ui",
         "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "without a token" in proc.stderr


def test_token_is_required_when_set(worker_env, ui_client, browser):
    token = "tok-" + "x" * 20
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ui = UIProcess({**worker_env, "TRIGGER_CELERY_UI_TOKEN": token},
                   "--port", str(port)).wait_ready(url)
    try:
        anon = requests.get(f"{url}/runs", timeout=10)
        assert anon.status_code == 401
        assert anon.headers["www-authenticate"].startswith("Basic")
        assert requests.get(f"{url}/runs", auth=("x", "wrong"), timeout=10).status_code == 401
        assert requests.get(f"{url}/runs", auth=("anyone", token), timeout=10).status_code == 200
        bearer = requests.get(f"{url}/runs", headers={"Authorization": f"Bearer {token}"},
                              timeout=10)
        assert bearer.status_code == 200
        assert "content-security-policy" in bearer.headers

        handle = ui_client.trigger("ui-triage", {"issue": 3, "seconds": 2})
        context = browser.new_context(http_credentials={"username": "me", "password": token})
        try:
            pg = context.new_page()
            pg.goto(f"{url}/runs/{handle.id}")
            expect(pg.locator("#run-status")).to_have_text("SUCCESS", timeout=40_000)
            assert token not in pg.content()
        finally:
            context.close()
    finally:
        ui.stop()
    assert token not in ui.output()


def test_unreachable_store_is_a_503(worker_env):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    dead = f"redis://127.0.0.1:{free_port()}/0"
    ui = UIProcess({**worker_env, "TRIGGER_CELERY_REDIS_URL": dead}, "--port", str(port))
    try:
        ui.wait_ready(url)
        for path in ("/runs", "/runs/run_x", "/runs/run_x/_body"):
            answer = requests.get(f"{url}{path}", timeout=30)
            assert answer.status_code == 503, (path, answer.text)
            assert "does not answer" in answer.text
    finally:
        ui.stop()
