"""A real browser for tests: Debian's chromium, driven by Playwright for Python (no browser download).

The ``browser`` (one per session) and ``page`` fixtures live in tests/conftest.py, so that the browser tests of
every folder share one Playwright session (a second session-scoped sync_playwright in the same run fails).
`make test` installs chromium when it is missing. Where it cannot (not root, no package), these tests are skipped
and the reason is printed in the skip line.
"""
