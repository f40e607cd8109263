"""End-to-end fixtures: Debian's chromium driven by Playwright, the live server, the ML sandbox.

Playwright's browsers are never downloaded (no `playwright install`): the tests launch the
system's /usr/bin/chromium. Without it they are skipped on a developer machine and fail in
CI (env CI set), where .ci/run installs it.
"""

import copy
import os
from pathlib import Path

import pytest

from accounts.mercadolivre.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, start_sandbox
from mlaccounts.celery import app as celery_app

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    """One chromium per test module (not per session: while Playwright runs, its event loop
    makes Django treat this thread as async, so it must be gone before other tests run)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio loop in the test's thread; the tests (and the
    # database fixtures around them) still use the ORM from that thread, which Django would
    # otherwise refuse. Unset again afterwards: `manage.py check --deploy` in a later test's
    # subprocess must not inherit it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    finally:
        playwright.stop()
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def sandbox():
    server = start_sandbox(port=0)
    yield server
    server.stop()


@pytest.fixture
def e2e_settings(settings, sandbox, live_server):
    """Point the app at the sandbox, and let cookies travel over the live server's plain HTTP."""
    settings.ML_SANDBOX = True
    settings.ML_CLIENT_ID = SANDBOX_CLIENT_ID
    settings.ML_CLIENT_SECRET = SANDBOX_CLIENT_SECRET
    settings.ML_API_URL = sandbox.url
    settings.ML_AUTH_URL = sandbox.url
    settings.ML_REDIRECT_URI = ""
    settings.ML_REQUESTS_PER_SECOND = 0
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SECURE_SSL_REDIRECT = False
    # The connect form's redirect goes to this sandbox's port: allow it like settings.py
    # allows the configured ML_AUTH_URL.
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"] = ["'self'", sandbox.url]
    settings.CONTENT_SECURITY_POLICY = policy
    return settings


@pytest.fixture
def eager_tasks():
    """No worker runs here: queued tasks (syncs, notification processing) run in the live
    server as they are queued."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def screenshot_dir():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def open_page(browser):
    contexts = []

    def open_page(viewport):
        # A fresh browser (its own cookies), a Brazilian seller's; tests switch language with the
        # app's own switcher. Content-Security-Policy violations are collected per page.
        context = browser.new_context(viewport=viewport, locale="pt-BR", timezone_id="America/Sao_Paulo")
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.csp_violations = []

        def watch(message):
            if "Content Security Policy" in message.text:
                page.csp_violations.append(message.text)

        page.on("console", watch)
        return page

    yield open_page
    for context in contexts:
        context.close()
