"""Settings: a TOML file plus ``CSONBOARD_*`` environment variables.

Every setting has a key ``section.name`` (or ``name`` at the top level) and an
environment variable ``CSONBOARD_<SECTION>_<NAME>``; the environment wins over
the file. Secrets (API keys, passwords, signing secrets) are read from the
environment only: putting one in the file is an error, so it cannot end up in a
repository by accident.

Failure policy: :func:`load_settings` raises :class:`~csonboard.errors.ConfigError`
for the first problem it finds, with a one-line message naming the key (and its
environment variable) and what is wrong. The CLI turns that into exit status 2.
Unknown keys in the file and unknown ``CSONBOARD_*`` variables are errors too: a
typo must not silently fall back to a default.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from csonboard.errors import ConfigError

if TYPE_CHECKING:
    from csonboard.ledger import Ledger

ENV_PREFIX = "CSONBOARD_"
CONFIG_ENV = "CSONBOARD_CONFIG"


class _Section(BaseModel):
    # inf and nan would pass every lower bound and then overflow at run time.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _secret(description: str) -> Any:
    """A field that may only come from the environment."""
    return Field(default=None, description=description, json_schema_extra={"secret": True})


class StripeSettings(_Section):
    mode: Literal["auto", "test", "live"] = "auto"
    api_base: str = ""
    tolerance_seconds: int = Field(default=300, gt=0)
    max_network_retries: int = Field(default=2, ge=0, le=10)
    timeout_seconds: float = Field(default=30.0, gt=0)
    api_key: SecretStr | None = _secret("the Stripe secret or restricted key")
    webhook_secrets: tuple[SecretStr, ...] = Field(
        default=(), json_schema_extra={"secret": True}, description="whsec_... secrets"
    )

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, tuple) and not all(str(v).startswith("whsec_") for v in value):
            # Never shown: a mistyped secret is still a secret.
            raise ValueError("each secret must start with whsec_ (the endpoint's signing secret)")
        return value

    @field_validator("api_base")
    @classmethod
    def _check_api_base(cls, value: str) -> str:
        return _http_url(value)


class ReceiverSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=2, ge=1, le=64)
    threads: int = Field(default=16, ge=1, le=256)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)


class ComputeStacksSettings(_Section):
    url: str = ""
    api_version: int | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    admin_username: SecretStr | None = _secret("an admin API credential's username")
    admin_password: SecretStr | None = _secret("an admin API credential's password")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)


def _http_url(value: str) -> str:
    """Empty, or an http(s) URL with a host and a valid port."""
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    _check_port(value)
    return value


class WorkerSettings(_Section):
    threads: int = Field(default=4, ge=1, le=256)
    metrics_port: int = Field(default=0, ge=0, le=65535)  # 0: no metrics server of its own
    metrics_host: str = "127.0.0.1"
    lease_seconds: float = Field(default=300, ge=1)
    max_attempts: int = Field(default=12, ge=1)
    backoff_seconds: float = Field(default=5.0, gt=0)
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    sweep_seconds: float = Field(default=30.0, gt=0)
    poll_seconds: float = Field(default=1.0, gt=0)


class OnboardingSettings(_Section):
    skip_email_confirm: bool = True
    on_email_conflict: Literal["fail", "adopt"] = "fail"
    order_deadline_minutes: float = Field(default=15.0, gt=0)
    poll_seconds: float = Field(default=2.0, gt=0)
    poll_max_seconds: float = Field(default=30.0, gt=0)
    refund_after_hours: float = Field(default=0.0, ge=0, le=24 * 365)


class StatusSettings(_Section):
    """The buyer's status page (``/welcome``, ``/status/<token>``)."""

    brand_name: str = Field(default="Cloud hosting", min_length=1, max_length=80)
    brand_color: str = "#1f4e8c"
    support_email: str = Field(default="", max_length=254)
    token_days: float = Field(default=7.0, gt=0, le=366)
    welcome_minutes: float = Field(default=60.0, gt=0)
    sso_window_hours: float = Field(default=24.0, ge=0)
    sso_per_hour: int = Field(default=10, ge=1, le=1000)
    refresh_seconds: int = Field(default=5, ge=2, le=300)

    @field_validator("brand_color")
    @classmethod
    def _check_brand_color(cls, value: str) -> str:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError("must be a colour as #rrggbb")
        ratio = contrast_with_white(value)
        if ratio < 4.5:
            # Buttons and headings put white text on it, links put it on white.
            raise ValueError(
                f"is too light: its contrast with white is {ratio:.2f}:1, "
                "and text needs at least 4.5:1 (WCAG AA); pick a darker shade"
            )
        return value.lower()

    @field_validator("support_email")
    @classmethod
    def _check_support_email(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError("must be an email address (or empty)")
        return value


def contrast_with_white(color: str) -> float:
    """WCAG 2 contrast ratio between ``#rrggbb`` and white (1 to 21)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    return 1.05 / (luminance + 0.05)


class LifecycleSettings(_Section):
    grace_days: float = Field(default=3.0, ge=0)
    retention_days: float = Field(default=30.0, ge=0)
    delete_user: bool = False


class UsageSettings(_Section):
    """Usage billed through Stripe Billing Meters (the catalog's ``[[usage]]``)."""

    interval_minutes: float = Field(default=60.0, gt=0, le=24 * 60)


class DriftSettings(_Section):
    """Where Stripe and ComputeStacks disagree (``csonboard drift``); the
    worker's scheduled pass is off until ``interval_minutes`` is set."""

    interval_minutes: float = Field(default=0.0, ge=0, le=7 * 24 * 60)
    fix: bool = False
    unowned: Literal["report", "stop"] = "report"
    computestacks_requests_per_minute: float = Field(default=100.0, gt=0, le=500)
    page_size: int = Field(default=100, ge=1, le=10_000)


class MoneySettings(_Section):
    """What csonboard does when a purchase's money goes back: refunds,
    disputes, early fraud warnings."""

    partial_refund: Literal["record", "stop"] = "record"
    early_fraud_warning: Literal["record", "refund"] = "record"
    submit_evidence: bool = False


class Settings(_Section):
    """All settings. Sections: ``stripe``, ``receiver``, ``cs``, ``worker``,
    ``onboarding``, ``lifecycle``, ``usage``, ``drift``, ``money``, ``status``."""

    data_dir: Path = Path("csonboard-data")
    database_url: str = ""
    database_pool_size: int = Field(default=5, ge=1, le=200)
    database_max_overflow: int = Field(default=5, ge=0, le=200)
    queue_url: str = ""
    queue_name: str = "csonboard"
    plans: Path | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    secret_key: SecretStr | None = _secret("signs the links handed to browsers")

    stripe: StripeSettings = StripeSettings()
    receiver: ReceiverSettings = ReceiverSettings()
    cs: ComputeStacksSettings = ComputeStacksSettings()
    worker: WorkerSettings = WorkerSettings()
    onboarding: OnboardingSettings = OnboardingSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    usage: UsageSettings = UsageSettings()
    drift: DriftSettings = DriftSettings()
    money: MoneySettings = MoneySettings()
    status: StatusSettings = StatusSettings()

    @field_validator("data_dir")
    @classmethod
    def _check_data_dir(cls, value: Path) -> Path:
        for place in (value, *value.parents):
            if place.exists() and not place.is_dir():
                raise ValueError(f"{place} is a file, not a directory")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        if value.startswith("postgresql"):
            _check_port(value)
        if value.startswith("postgresql://"):
            # psycopg 3 is the driver we ship with the "scale" extra.
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("queue_url")
    @classmethod
    def _check_queue_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://", "sqlite:///")):
            raise ValueError("must be empty (SQLite in data_dir), sqlite:///PATH or redis://...")
        if value.startswith(("redis://", "rediss://")):
            _check_port(value)
        return value

    @field_validator("queue_name")
    @classmethod
    def _check_queue_name(cls, value: str) -> str:
        # It names the queue's Redis keys and connections, and Redis refuses
        # connection names with spaces or other characters.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
            raise ValueError(
                "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return value

    # -- derived values -------------------------------------------------------------

    def open_ledger(self, *, must_exist: bool = False) -> Ledger:
        """The ledger, with the configured pool. With ``must_exist`` (commands
        that read or operate on it), a SQLite ledger that is not there is a
        ConfigError naming the path, rather than a new empty one."""
        from csonboard.ledger import Ledger

        sqlite = self.ledger_url.removeprefix("sqlite:///")
        if must_exist and sqlite != self.ledger_url and not Path(sqlite).is_file():
            raise ConfigError(
                "database_url (CSONBOARD_DATABASE_URL)"
                if self.database_url
                else "data_dir (CSONBOARD_DATA_DIR)",
                f"no ledger at {Path(sqlite).absolute()}: `csonboard db upgrade` creates one, "
                "or point CSONBOARD_DATA_DIR (or CSONBOARD_DATABASE_URL) at yours",
            )
        return Ledger.open(
            self.ledger_url,
            pool_size=self.database_pool_size,
            max_overflow=self.database_max_overflow,
        )

    @property
    def ledger_url(self) -> str:
        """The SQLAlchemy URL of the ledger (SQLite in ``data_dir`` by default)."""
        return self.database_url or f"sqlite:///{self.data_dir / 'ledger.db'}"

    @property
    def livemode(self) -> bool:
        """Whether we deal in live money. Raises ConfigError if it cannot be told."""
        if self.stripe.mode != "auto":
            return self.stripe.mode == "live"
        key = self.stripe.api_key.get_secret_value() if self.stripe.api_key else ""
        if key.startswith(("sk_live_", "rk_live_")):
            return True
        if key.startswith(("sk_test_", "rk_test_")):
            return False
        raise ConfigError(
            "stripe.mode",
            "cannot tell test from live: set CSONBOARD_STRIPE_API_KEY (sk_test_/sk_live_...) "
            "or stripe.mode",
        )

    def webhook_secrets(self) -> list[str]:
        """The signing secrets to try, in order. Raises ConfigError when none is set."""
        secrets = [s.get_secret_value() for s in self.stripe.webhook_secrets]
        if not secrets:
            raise ConfigError(
                "stripe.webhook_secrets",
                "required: set CSONBOARD_STRIPE_WEBHOOK_SECRETS (comma-separated whsec_...)",
            )
        return secrets

    def secret_keys(self) -> list[str]:
        """The keys that sign links handed to browsers, newest first:
        ``CSONBOARD_SECRET_KEY`` is comma-separated for rotation (the first
        signs; every one still verifies). Empty when none is set. Raises
        ConfigError for a key too short to be a secret."""
        raw = self.secret_key.get_secret_value() if self.secret_key else ""
        keys = [part.strip() for part in raw.split(",") if part.strip()]
        for key in keys:
            if len(key) < 16:
                raise ConfigError(
                    "secret_key (CSONBOARD_SECRET_KEY)",
                    "each key must have at least 16 characters; use a long random string "
                    "(python -c 'import secrets; print(secrets.token_urlsafe(32))')",
                )
        return keys


_SECTIONS: dict[str, type[_Section]] = {
    "stripe": StripeSettings,
    "receiver": ReceiverSettings,
    "cs": ComputeStacksSettings,
    "worker": WorkerSettings,
    "onboarding": OnboardingSettings,
    "lifecycle": LifecycleSettings,
    "usage": UsageSettings,
    "drift": DriftSettings,
    "money": MoneySettings,
    "status": StatusSettings,
}


def _check_port(url: str) -> None:
    """A server URL's port, if given, must be a number from 1 to 65535."""
    try:
        port = urlsplit(url).port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("has a port that is not a number from 1 to 65535")


def env_name(key: str) -> str:
    """``"stripe.api_key"`` -> ``"CSONBOARD_STRIPE_API_KEY"``."""
    return ENV_PREFIX + key.replace(".", "_").upper()


def all_settings() -> dict[str, tuple[str, bool]]:
    """Every setting's key -> (its environment variable, whether it is a secret)."""
    return {
        key: (env_name(key), _is_secret(model, name)) for key, (model, name) in _all_keys().items()
    }


def _is_secret(model: type[_Section], name: str) -> bool:
    extra = model.model_fields[name].json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("secret"))


def _all_keys() -> dict[str, tuple[type[_Section], str]]:
    """Every settable key, mapped to the model and field that holds it."""
    keys: dict[str, tuple[type[_Section], str]] = {}
    for name in Settings.model_fields:
        if name not in _SECTIONS:
            keys[name] = (Settings, name)
    for section, model in _SECTIONS.items():
        for name in model.model_fields:
            keys[f"{section}.{name}"] = (model, name)
    return keys


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("config", f"file not found: {path}") from None
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError("config", f"{path} is not UTF-8 text (TOML must be)") from None


def _flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """``{"stripe": {"mode": "test"}}`` -> ``{"stripe.mode": "test"}``."""
    flat: dict[str, Any] = {}
    for name, value in data.items():
        if name in _SECTIONS and not isinstance(value, Mapping):
            raise ConfigError(name, f"must be a table ([{name}]), got {value!r}")
        if name in _SECTIONS and isinstance(value, Mapping):
            for inner, inner_value in value.items():
                flat[f"{name}.{inner}"] = inner_value
        else:
            flat[name] = value
    return flat


def load_settings(config_path: Path | None = None, environ: Mapping[str, str] = {}) -> Settings:
    """Build :class:`Settings` from the TOML file and the environment.

    ``config_path`` wins over ``CSONBOARD_CONFIG`` in ``environ``. Pass
    ``os.environ`` explicitly; nothing here reads process state on its own.

    Raises :class:`ConfigError` naming the first bad key.
    """
    keys = _all_keys()
    path = config_path or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    from_file = _flatten(_read_file(path)) if path else {}

    values: dict[str, Any] = {}
    for key, value in from_file.items():
        if key not in keys:
            raise ConfigError(key, f"unknown setting in {path}")
        model, name = keys[key]
        if _is_secret(model, name):
            raise ConfigError(
                key, f"is a secret: set it in the environment as {env_name(key)}, not in {path}"
            )
        values[key] = value

    by_env = {env_name(key): key for key in keys}
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        if var not in by_env:
            raise ConfigError(var, "unknown environment variable (check the spelling)")
        values[by_env[var]] = value

    nested: dict[str, Any] = {}
    for key, value in values.items():
        section, _, name = key.rpartition(".")
        (nested.setdefault(section, {}) if section else nested)[name] = value
    try:
        settings = Settings.model_validate(nested)
    except ValidationError as exc:
        raise _config_error(exc, values) from None
    if settings.stripe.mode != "auto" and settings.stripe.api_key:
        _check_key_matches_mode(settings)
    return settings


def _check_key_matches_mode(settings: Settings) -> None:
    key = settings.stripe.api_key.get_secret_value() if settings.stripe.api_key else ""
    live_key = key.startswith(("sk_live_", "rk_live_"))
    test_key = key.startswith(("sk_test_", "rk_test_"))
    if (settings.stripe.mode == "live" and test_key) or (
        settings.stripe.mode == "test" and live_key
    ):
        raise ConfigError(
            "stripe.mode",
            f"is {settings.stripe.mode!r} but CSONBOARD_STRIPE_API_KEY is a "
            f"{'live' if live_key else 'test'} key",
        )


_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def _config_error(exc: ValidationError, values: Mapping[str, Any]) -> ConfigError:
    """Turn pydantic's report into one line about the first bad key."""
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    model_key = key if key in values else key.split(".")[0]
    problem = first["msg"].removeprefix("Value error, ")  # our validators' own words
    if model_key in values:
        model, name = _all_keys().get(model_key, (Settings, ""))
        if name and _is_secret(model, name):
            shown = "<hidden>"
        else:  # a URL's password, as in postgres://user:password@host/db
            shown = _URL_PASSWORD.sub(r"\1<hidden>@", repr(values[model_key]))
        problem = f"{problem} (got {shown})"
    return ConfigError(f"{key} ({env_name(key)})", problem)
