"""Unit tests of settings: typed groups read from the environment and a `.env` file."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasync.bootstrap import ServiceSettings
from datasync.settings import (
    AppEnv,
    DatabaseSettings,
    HttpSettings,
    KafkaSettings,
    LogSettings,
    OutboxSettings,
    SettingsError,
    read_app_env,
    read_environment,
    read_group,
)

DATABASE_URL = "postgresql://pedidos:secret@127.0.0.1:5432/pedidos"
SERVICE_VARIABLES = ("APP_ENV", "DATABASE_URL", "HTTP_PORT", "KAFKA_BOOTSTRAP_SERVERS")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without the variables these tests set."""
    for variable in SERVICE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def write_dotenv(directory: Path, text: str) -> Path:
    path = directory / ".env"
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------
# SettingsGroup.from_env
# --------------------------------------------------------------------------------------


def test_a_group_without_variables_takes_its_defaults() -> None:
    http = HttpSettings.from_env({}, AppEnv.DEV)

    assert http == HttpSettings(host="127.0.0.1", port=8000, max_body_bytes=65_536)


def test_a_variable_is_named_after_the_prefix_and_the_field() -> None:
    env = {"OUTBOX_POLL_INTERVAL_MS": "250", "OUTBOX_BATCH_SIZE": "50"}

    outbox = OutboxSettings.from_env(env, AppEnv.DEV)

    assert (outbox.poll_interval_ms, outbox.batch_size) == (250, 50)


def test_numbers_are_converted_to_the_field_type() -> None:
    env = {"DATABASE_URL": DATABASE_URL, "DATABASE_CONNECT_TIMEOUT_S": "2.5"}

    database = DatabaseSettings.from_env(env, AppEnv.DEV)

    assert database.connect_timeout_s == 2.5
    assert database.pool_size == 10


def test_an_empty_variable_counts_as_unset() -> None:
    http = HttpSettings.from_env({"HTTP_PORT": ""}, AppEnv.DEV)

    assert http.port == 8000


def test_an_optional_setting_is_none_unless_set() -> None:
    unset = KafkaSettings.from_env({}, AppEnv.DEV)
    set_ = KafkaSettings.from_env({"KAFKA_SASL_MECHANISM": "PLAIN"}, AppEnv.DEV)

    assert unset.sasl_mechanism is None
    assert set_.sasl_mechanism == "PLAIN"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HTTP_PORT": "abc"}, r"^HTTP_PORT='abc' is malformed: Expected `int`, got `str`$"),
        ({"HTTP_PORT": "80.5"}, r"^HTTP_PORT='80\.5' is malformed: Expected `int`, got `str`$"),
        (
            {"HTTP_MAX_BODY_BYTES": "64k"},
            r"^HTTP_MAX_BODY_BYTES='64k' is malformed: Expected `int`, got `str`$",
        ),
    ],
)
def test_a_malformed_int_names_the_variable_and_its_value(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        HttpSettings.from_env(env, AppEnv.DEV)


def test_a_malformed_float_names_the_variable() -> None:
    env = {"DATABASE_URL": DATABASE_URL, "DATABASE_COMMAND_TIMEOUT_S": "soon"}

    with pytest.raises(
        SettingsError,
        match=r"^DATABASE_COMMAND_TIMEOUT_S='soon' is malformed: Expected `float`, got `str`$",
    ):
        DatabaseSettings.from_env(env, AppEnv.DEV)


def test_a_required_setting_without_default_names_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^DATABASE_URL is required$"):
        DatabaseSettings.from_env({"DATABASE_POOL_SIZE": "5"}, AppEnv.DEV)


@pytest.mark.parametrize("app_env", [AppEnv.STAGING, AppEnv.PROD])
def test_kafka_bootstrap_servers_are_required_outside_dev(app_env: AppEnv) -> None:
    with pytest.raises(
        SettingsError, match=rf"^KAFKA_BOOTSTRAP_SERVERS is required when APP_ENV={app_env}$"
    ):
        KafkaSettings.from_env({}, app_env)


def test_kafka_bootstrap_servers_default_to_loopback_in_dev() -> None:
    kafka = KafkaSettings.from_env({}, AppEnv.DEV)

    assert kafka.bootstrap_servers == "127.0.0.1:9092"


def test_kafka_bootstrap_servers_set_in_prod_are_used() -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092,kafka-2:9092"}

    kafka = KafkaSettings.from_env(env, AppEnv.PROD)

    assert kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"


@pytest.mark.parametrize(
    ("app_env", "expected"),
    [(AppEnv.DEV, "auto"), (AppEnv.STAGING, "json"), (AppEnv.PROD, "json")],
)
def test_the_environment_picks_the_default_log_format(app_env: AppEnv, expected: str) -> None:
    log = LogSettings.from_env({}, app_env)

    assert log.format == expected


def test_a_variable_wins_over_the_default_of_the_environment() -> None:
    log = LogSettings.from_env({"LOG_FORMAT": "console"}, AppEnv.PROD)

    assert log.format == "console"


# --------------------------------------------------------------------------------------
# read_app_env and read_group
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, AppEnv.DEV),
        ({"APP_ENV": ""}, AppEnv.DEV),
        ({"APP_ENV": "staging"}, AppEnv.STAGING),
        ({"APP_ENV": "prod"}, AppEnv.PROD),
    ],
)
def test_app_env_defaults_to_dev(env: dict[str, str], expected: AppEnv) -> None:
    assert read_app_env(env) is expected


@pytest.mark.parametrize("value", ["bogus", "PROD", "production", " dev"])
def test_an_unknown_app_env_is_rejected_naming_app_env(value: str) -> None:
    with pytest.raises(
        SettingsError,
        match=rf"^APP_ENV={value!r} is malformed: expected one of dev, staging, prod$",
    ):
        read_app_env({"APP_ENV": value})


def test_a_default_from_the_composition_root_applies_when_the_variable_is_unset() -> None:
    http = read_group(HttpSettings, {}, AppEnv.DEV, port=8001)

    assert http.port == 8001


def test_a_variable_wins_over_the_default_from_the_composition_root() -> None:
    http = read_group(HttpSettings, {"HTTP_PORT": "9000"}, AppEnv.DEV, port=8001)

    assert http.port == 9000


def test_an_empty_variable_takes_the_default_from_the_composition_root() -> None:
    http = read_group(HttpSettings, {"HTTP_PORT": ""}, AppEnv.DEV, port=8001)

    assert http.port == 8001


# --------------------------------------------------------------------------------------
# read_environment
# --------------------------------------------------------------------------------------


def test_the_dotenv_file_is_read(tmp_path: Path, clean_environment: pytest.MonkeyPatch) -> None:
    dotenv = write_dotenv(tmp_path, f"DATABASE_URL={DATABASE_URL}\nHTTP_PORT=9000\n")

    env = read_environment(dotenv)

    assert env["DATABASE_URL"] == DATABASE_URL
    assert env["HTTP_PORT"] == "9000"


def test_the_environment_wins_over_the_dotenv_file(
    tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    dotenv = write_dotenv(tmp_path, "HTTP_PORT=9000\nAPP_ENV=staging\n")
    clean_environment.setenv("HTTP_PORT", "9100")

    env = read_environment(dotenv)

    assert env["HTTP_PORT"] == "9100"
    assert env["APP_ENV"] == "staging"


def test_empty_values_of_the_dotenv_file_are_skipped(
    tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    dotenv = write_dotenv(tmp_path, "HTTP_PORT=\nKAFKA_BOOTSTRAP_SERVERS\n")

    env = read_environment(dotenv)

    assert "HTTP_PORT" not in env
    assert "KAFKA_BOOTSTRAP_SERVERS" not in env


def test_a_missing_dotenv_file_leaves_the_environment_alone(
    tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    clean_environment.setenv("HTTP_PORT", "9100")

    from_missing_file = read_environment(tmp_path / ".env")
    without_file = read_environment(None)

    assert from_missing_file["HTTP_PORT"] == without_file["HTTP_PORT"] == "9100"
    assert "DATABASE_URL" not in from_missing_file


def test_the_dotenv_file_of_the_working_directory_is_read_by_default(
    tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    write_dotenv(tmp_path, f"DATABASE_URL={DATABASE_URL}\n")
    clean_environment.chdir(tmp_path)

    env = read_environment()

    assert env["DATABASE_URL"] == DATABASE_URL


# --------------------------------------------------------------------------------------
# ServiceSettings.from_environment
# --------------------------------------------------------------------------------------


def test_service_settings_are_read_with_the_service_default_port() -> None:
    settings = ServiceSettings.from_environment(
        default_port=8001, env={"DATABASE_URL": DATABASE_URL}
    )

    assert settings.app_env is AppEnv.DEV
    assert settings.database.url == DATABASE_URL
    assert settings.http.port == 8001
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"


def test_service_settings_without_database_url_name_it() -> None:
    with pytest.raises(SettingsError, match=r"^DATABASE_URL is required$"):
        ServiceSettings.from_environment(default_port=8001, env={"HTTP_PORT": "9000"})


def test_service_settings_in_prod_require_kafka_bootstrap_servers() -> None:
    env = {"APP_ENV": "prod", "DATABASE_URL": DATABASE_URL}

    with pytest.raises(
        SettingsError, match=r"^KAFKA_BOOTSTRAP_SERVERS is required when APP_ENV=prod$"
    ):
        ServiceSettings.from_environment(default_port=8001, env=env)


def test_service_settings_with_a_bogus_app_env_name_app_env() -> None:
    env = {"APP_ENV": "bogus", "DATABASE_URL": DATABASE_URL}

    with pytest.raises(SettingsError, match=r"^APP_ENV='bogus' is malformed"):
        ServiceSettings.from_environment(default_port=8001, env=env)


def test_service_settings_read_the_dotenv_file_when_no_env_is_given(
    tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    write_dotenv(tmp_path, f"DATABASE_URL={DATABASE_URL}\nHTTP_PORT=9000\n")
    clean_environment.chdir(tmp_path)
    clean_environment.setenv("HTTP_PORT", "9100")

    settings = ServiceSettings.from_environment(default_port=8001)

    assert settings.database.url == DATABASE_URL
    assert settings.http.port == 9100


def test_service_settings_with_an_empty_http_port_use_the_service_default_port() -> None:
    env = {"DATABASE_URL": DATABASE_URL, "HTTP_PORT": ""}

    settings = ServiceSettings.from_environment(default_port=8001, env=env)

    assert settings.http.port == 8001


@pytest.mark.parametrize("url", ["notaurl", "mysql://u:p@h:3306/db", "postgresql://nohost"])
def test_a_database_url_that_is_not_postgresql_is_refused_naming_it(url: str) -> None:
    env = {"DATABASE_URL": url}

    with pytest.raises(SettingsError, match="DATABASE_URL"):
        ServiceSettings.from_environment(default_port=3000, env=env)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_WRITE_POOL_SIZE", "0", "Expected `int` >= 1"),
        ("DATABASE_GROUP_COMMIT_MAX_ITEMS", "0", "Expected `int` >= 1"),
        ("DATABASE_GROUP_COMMIT_DELAY_MS", "-1", r"Expected `float` >= 0\.0"),
    ],
)
def test_a_group_commit_that_could_never_write_is_refused(
    variable: str, value: str, message: str
) -> None:
    env = {"DATABASE_URL": DATABASE_URL, variable: value}

    with pytest.raises(SettingsError, match=rf"^{variable}='{value}' is malformed: {message}$"):
        DatabaseSettings.from_env(env, AppEnv.DEV)


def test_the_group_commit_gathers_for_2_ms_with_one_writer_by_default() -> None:
    settings = DatabaseSettings.from_env({"DATABASE_URL": DATABASE_URL}, AppEnv.DEV)

    assert settings.write_pool_size == 1
    assert settings.group_commit_delay_ms == 2.0
