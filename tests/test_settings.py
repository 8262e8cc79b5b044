"""Settings: file plus environment, secrets from the environment only, and one
clear line naming the key for anything wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from csonboard.cli import main
from csonboard.errors import ConfigError
from csonboard.settings import all_settings, load_settings

EXAMPLE = Path(__file__).parent.parent / "config" / "csonboard.example.toml"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "csonboard.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_defaults_need_no_file_and_no_environment() -> None:
    settings = load_settings(None, {})
    assert settings.ledger_url == "sqlite:///csonboard-data/ledger.db"
    assert settings.stripe.tolerance_seconds == 300
    assert settings.receiver.max_body_bytes == 1024 * 1024


def test_the_example_file_documents_every_setting_with_its_default() -> None:
    assert load_settings(EXAMPLE, {}) == load_settings(None, {})
    text = EXAMPLE.read_text()
    for key, (env, secret) in all_settings().items():
        assert env in text, f"{env} is not mentioned in {EXAMPLE.name}"
        if not secret:
            assert f"{key.rpartition('.')[2]} =" in text, f"{key} is not in {EXAMPLE.name}"


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "queue_name = 'from-file'\n[stripe]\ntolerance_seconds = 100\n")
    settings = load_settings(path, {"CSONBOARD_STRIPE_TOLERANCE_SECONDS": "200"})
    assert settings.queue_name == "from-file"
    assert settings.stripe.tolerance_seconds == 200


def test_config_path_comes_from_the_environment_when_not_given(tmp_path: Path) -> None:
    path = write(tmp_path, "queue_name = 'q'\n")
    assert load_settings(None, {"CSONBOARD_CONFIG": str(path)}).queue_name == "q"


def test_webhook_secrets_are_comma_separated_for_rotation() -> None:
    settings = load_settings(None, {"CSONBOARD_STRIPE_WEBHOOK_SECRETS": "whsec_new, whsec_old,"})
    assert settings.webhook_secrets() == ["whsec_new", "whsec_old"]
    assert "whsec_new" not in repr(settings)


@pytest.mark.parametrize(
    ("key", "mode", "live"),
    [
        ("sk_test_x", "auto", False),
        ("rk_live_x", "auto", True),
        (None, "live", True),
        (None, "test", False),
    ],
)
def test_test_or_live_mode_follows_the_key_unless_set(
    key: str | None, mode: str, live: bool
) -> None:
    env = {"CSONBOARD_STRIPE_MODE": mode, **({"CSONBOARD_STRIPE_API_KEY": key} if key else {})}
    assert load_settings(None, env).livemode is live


@pytest.mark.parametrize(
    ("file_text", "env", "says"),
    [
        ("", {"CSONBOARD_RECEIVER_PORT": "eighty"}, "receiver.port (CSONBOARD_RECEIVER_PORT): "),
        ("[receiver]\nmax_body_bytes = -1\n", {}, "receiver.max_body_bytes"),
        ("", {"CSONBOARD_RECEIVER_THREADS": "0"}, "receiver.threads (CSONBOARD_RECEIVER_THREADS)"),
        ("[recever]\nport = 1\n", {}, "recever: unknown setting"),
        ("[stripe]\napi_key = 'sk_test_x'\n", {}, "stripe.api_key: is a secret"),
        ("", {"CSONBOARD_DATABSE_URL": "x"}, "CSONBOARD_DATABSE_URL: unknown environment variable"),
        ("", {"CSONBOARD_DATABASE_URL": "mysql://x"}, "database_url (CSONBOARD_DATABASE_URL)"),
        ("", {"CSONBOARD_QUEUE_URL": "amqp://x"}, "queue_url"),
        (
            "",
            {"CSONBOARD_DATABASE_URL": "postgresql://u@127.0.0.1:abc/db"},
            "database_url (CSONBOARD_DATABASE_URL): has a port that is not a number",
        ),
        ("", {"CSONBOARD_QUEUE_URL": "redis://127.0.0.1:99999/0"}, "queue_url (CSONBOARD_QUEUE"),
        ("", {"CSONBOARD_CS_URL": "cs.example.com"}, "cs.url (CSONBOARD_CS_URL): must be an http"),
        ("", {"CSONBOARD_STRIPE_API_BASE": "localhost:12111"}, "stripe.api_base"),
        (
            "",
            {"CSONBOARD_STRIPE_WEBHOOK_SECRETS": "whsec_ok,sk_test_oops"},
            "each secret must start with whsec_",
        ),
        ("", {"CSONBOARD_WORKER_LEASE_SECONDS": "inf"}, "worker.lease_seconds"),
        ("", {"CSONBOARD_LIFECYCLE_GRACE_DAYS": "nan"}, "lifecycle.grace_days"),
        ("queue_name = 'my queue'\n", {}, "queue_name (CSONBOARD_QUEUE_NAME): must be 1 to 64"),
        ("stripe = 5\n", {}, "stripe: must be a table"),
        ("not toml [", {}, "is not valid TOML"),
        ("title = 'caf\xe9'\n".encode("latin-1"), {}, "is not UTF-8 text"),
        (
            "[stripe]\nmode = 'live'\n",
            {"CSONBOARD_STRIPE_API_KEY": "sk_test_x"},
            "stripe.mode: is 'live' but CSONBOARD_STRIPE_API_KEY is a test key",
        ),
    ],
)
def test_a_bad_setting_is_one_error_naming_its_key(
    tmp_path: Path, file_text: str | bytes, env: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, file_text), env)
    assert says in str(raised.value)
    assert "\n" not in str(raised.value)


def test_mode_cannot_be_guessed_without_a_key() -> None:
    with pytest.raises(ConfigError, match="cannot tell test from live"):
        _ = load_settings(None, {}).livemode


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", {})


def test_the_cli_stops_with_status_2_and_one_line_for_bad_settings(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["serve"],
        env={"CSONBOARD_RECEIVER_WORKERS": "0", "CSONBOARD_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("csonboard: configuration error: receiver.workers")


def test_a_data_dir_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    for data_dir in (tmp_path / "file", tmp_path / "file" / "under"):
        with pytest.raises(ConfigError, match="is a file, not a directory"):
            load_settings(None, {"CSONBOARD_DATA_DIR": str(data_dir)})


def test_a_mistyped_webhook_secret_is_never_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(None, {"CSONBOARD_STRIPE_WEBHOOK_SECRETS": "sk_test_oops_secret"})
    assert "sk_test_oops_secret" not in str(raised.value) and "<hidden>" in str(raised.value)


def test_a_read_command_never_creates_a_ledger_and_names_where_it_looked(tmp_path: Path) -> None:
    data_dir = tmp_path / "nowhere"
    for command in (["events", "list"], ["onboardings", "list"], ["lifecycle", "list"]):
        result = CliRunner().invoke(main, command, env={"CSONBOARD_DATA_DIR": str(data_dir)})

        assert result.exit_code == 2, result.output
        assert f"no ledger at {data_dir / 'ledger.db'}" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not data_dir.exists()


def test_serve_refuses_to_start_without_webhook_secrets(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["serve"], env={"CSONBOARD_DATA_DIR": str(tmp_path), "CSONBOARD_STRIPE_MODE": "test"}
    )
    assert result.exit_code == 2
    assert "stripe.webhook_secrets: required" in result.stderr


def test_bad_usage_exits_2() -> None:
    result = CliRunner().invoke(main, ["events", "list", "--since", "yesterday-ish"])
    assert result.exit_code == 2
    assert "neither a duration" in result.stderr


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("CSONBOARD_DATABASE_URL", "postgres://csonboard:Db-Pa55word@db:5432/csonboard"),
        ("CSONBOARD_QUEUE_URL", "amqp://queue:Qu3ue-secret@mq:5672/"),
    ],
)
def test_a_refused_url_never_shows_its_password(tmp_path: Path, name: str, url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, ""), {name: url})
    message = str(raised.value)
    assert "secret" not in message.lower() and "Pa55word" not in message
    assert "<hidden>@" in message
