"""Shared test set-up: each part of the real world the tests need lives in tests/fixtures/."""

from hypothesis import settings

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

# Every run is a CI run: a property test that names no example count of its own tries 25
# (hypothesis's default is 100); the parsers of hostile input name theirs and keep them.
# `pytest --hypothesis-profile=default` runs the default's 100.
settings.register_profile("ci", max_examples=25)
settings.load_profile("ci")
