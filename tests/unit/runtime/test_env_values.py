"""Environment values: a bad one names its variable and what it takes; booleans and choices
are read the same way everywhere, in any case."""

from __future__ import annotations

import io
import logging

import pytest

from services.runtime import configure_logging
from services.runtime._logging import JsonFormatter, ScrubbingTextFormatter
from services.runtime._settings import KafkaSettings, PlatformSettings, QueueSettings, Settings


@pytest.mark.parametrize("variable, value", [
    ("AUTOPOST_STALL_SECONDS", "5m"),
    ("AUTOPOST_HTTP_PORT", "80.5"),
    ("KAFKA_MAX_POLL_RECORDS", "lots"),
    ("AUTOPOST_RETRY_MAX_ATTEMPTS", "three"),
    ("AUTOPOST_ENGAGEMENT_AGES_SECONDS", "3600,1d"),
    ("AUTOPOST_PUBLISH_RATE_TIKTOK", "6/1m"),
    ("AUTOPOST_PLANNER_DAILY_CAPS", "tiktok=4,instagram=many"),
])
def test_a_bad_number_names_its_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable) as error:
        Settings.from_env()
    assert repr(value) in str(error.value) and "expected" in str(error.value)


def test_numbers_still_read(monkeypatch):
    monkeypatch.setenv("AUTOPOST_STALL_SECONDS", " 120 ")
    monkeypatch.setenv("AUTOPOST_HTTP_PORT", "9000")
    monkeypatch.setenv("AUTOPOST_RETRY_MAX_ATTEMPTS", "")
    settings = Settings.from_env()
    assert settings.stall_seconds == 120.0 and settings.http_port == 9000
    assert QueueSettings.from_env().retry_max_attempts is None


@pytest.mark.parametrize("value, expected", [
    ("1", True), ("true", True), ("True", True), ("YES", True), ("on", True),
    ("0", False), ("false", False), ("No", False), ("OFF", False), ("", False),
])
def test_idempotence_reads_like_every_boolean(monkeypatch, value, expected):
    monkeypatch.setenv("KAFKA_ENABLE_IDEMPOTENCE", value)
    monkeypatch.setenv("AUTOPOST_TIKTOK_UNAUDITED", value)
    assert KafkaSettings.from_env().enable_idempotence is expected
    assert PlatformSettings.from_env().tiktok_unaudited is expected


@pytest.mark.parametrize("variable", ["KAFKA_ENABLE_IDEMPOTENCE", "AUTOPOST_TIKTOK_UNAUDITED"])
def test_a_boolean_that_is_neither_is_refused(monkeypatch, variable):
    monkeypatch.setenv(variable, "maybe")
    with pytest.raises(ValueError, match=f"{variable}='maybe'.*true.*false"):
        Settings.from_env()


@pytest.mark.parametrize("value, expected", [("JSON", "json"), ("Text", "text"), ("json", "json")])
def test_log_format_in_any_case(monkeypatch, value, expected):
    monkeypatch.setenv("AUTOPOST_LOG_FORMAT", value)
    assert Settings.from_env().log_format == expected


@pytest.mark.parametrize("variable, value", [("AUTOPOST_LOG_FORMAT", "xml"), ("AUTOPOST_LOG_LEVEL", "loud")])
def test_an_unknown_log_format_or_level_is_refused(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=f"{variable}='{value}'.*expected one of"):
        Settings.from_env()


def test_log_level_in_any_case(monkeypatch):
    monkeypatch.setenv("AUTOPOST_LOG_LEVEL", "debug")
    assert Settings.from_env().log_level == "DEBUG"


@pytest.fixture
def _restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_configure_logging_takes_any_case(_restore_root):
    configure_logging("debug", fmt="JSON", stream=io.StringIO())
    [handler] = logging.getLogger().handlers
    assert isinstance(handler.formatter, JsonFormatter) and logging.getLogger().level == logging.DEBUG
    configure_logging("INFO", fmt="Text", stream=io.StringIO())
    assert isinstance(logging.getLogger().handlers[0].formatter, ScrubbingTextFormatter)


def test_configure_logging_refuses_an_unknown_format(_restore_root):
    with pytest.raises(ValueError, match="'xml'.*json, text"):
        configure_logging("INFO", fmt="xml", stream=io.StringIO())
