# The browser fixtures of tests/browser/, for the Trends panel's browser test.
from tests.browser.conftest import browser, chromium  # noqa: F401
