# Browser studio: the end-to-end test drives Debian's chromium through Playwright
# (tests/e2e, markers `browser` and `slow`); screenshots land in test-artifacts/.
# The emoji font makes the pages' icons render in headless chromium's screenshots.
SYSTEM_PACKAGES += chromium fonts-noto-color-emoji
