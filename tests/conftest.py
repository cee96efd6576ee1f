"""Shared test set-up: each part of the real world the tests need lives in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.headless_desktop",  # first: every other part runs on its desktop
    "tests.fixtures.environment",
    "tests.fixtures.emulator",
    "tests.fixtures.scripted_http",
    "tests.fixtures.colab",
    "tests.fixtures.browser",
    "tests.fixtures.desktop",
    "tests.fixtures.bridge",
    "tests.fixtures.gcloud",
    "tests.fixtures.ssh",
]
