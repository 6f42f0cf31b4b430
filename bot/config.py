"""The one Settings object: built once in __main__ (or by a test) and passed down, never read globally."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Precision = Literal["auto", "float32", "bfloat16"]  # the encoder's (bot/classify/encoder.py: inference_dtype)

# The platforms' documented send limits (replies per second; platforms.md), paced so they never answer 429.
SEND_RATE = {
    "x_mention": 100 / 900,  # POST /2/tweets: 100 per 15 minutes per user
    "x_dm": 15 / 900,  # DM sends: 15 per 15 minutes per user
    "messenger": 250.0,  # Send API: 300/s per Page
    "facebook_comment": 250.0,
    "instagram_dm": 250.0,
    "instagram_comment": 750 / 3600,  # private replies: 750/h per account; public replies share it here
    "whatsapp": 80.0,  # default throughput per number
    "telegram": 30.0,  # the Bot FAQ's overall guidance
    "chatwoot": 50.0,  # rack-attack's default 3000/min per IP
}


class Settings(BaseSettings):
    """Every setting of the service; each is read from the environment variable `BOT_<NAME>` or `.env`."""

    model_config = SettingsConfigDict(env_prefix="BOT_", env_file=".env", extra="ignore")

    redis_url: str | None = Field(None, description="Redis server URL; unset: start an embedded Redis in data_dir.")
    redis_prefix: str = Field("bot", pattern=r"^[A-Za-z0-9_.-]+$", description="Prefix of every Redis key.")
    redis_connections: int = Field(
        100, gt=0, description="Redis connections a process may open; past that, callers wait (up to 10 s) for one."
    )
    data_dir: Path = Field(Path("data"), description="Embedded Redis files and trained-model caches.")
    policies_dir: Path = Field(Path("policies"), description="Intents, risk lexicon and decision policy (YAML).")
    prompts_dir: Path = Field(Path("prompts"), description="Persona, prompt templates, knowledge base, answers.")
    models_dir: Path | None = Field(None, description="Tuned and trained intent models; unset: data_dir/models.")
    model_path: Path | None = Field(None, description="Local transformers encoder; unset: all-MiniLM-L6-v2.")
    intent_tuned_layers: int = Field(
        2, ge=0, le=12, description="Encoder layers tuned to the intents (a copy; more: slower); 0: a frozen encoder."
    )
    encoder_precision: Precision = Field(
        "auto", description="float32, bfloat16, or auto: bfloat16 where the CPU computes it natively (faster)."
    )
    encoder_onnx: bool = Field(
        True, description="A message that comes alone runs in ONNX Runtime (about half PyTorch's time); batches stay."
    )
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    generic_secret: SecretStr | None = Field(None, description="HMAC key of the generic channel (both ways).")
    generic_reply_url: str | None = Field(None, pattern=r"^https?://", description="Where generic replies go.")
    telegram_bot_token: SecretStr | None = Field(None, description="Telegram bot token (from @BotFather).")
    telegram_secret_token: SecretStr | None = Field(
        None, description="Secret Telegram sends with every delivery (1-256 of A-Z a-z 0-9 _ -)."
    )
    telegram_api_url: str = Field("https://api.telegram.org", pattern=r"^https?://", description="Bot API base URL.")
    meta_app_secret: SecretStr | None = Field(None, description="Meta app secret: the X-Hub-Signature-256 key.")
    meta_instagram_app_secret: SecretStr | None = Field(
        None, description="Instagram app secret (Business Login apps sign Instagram deliveries with it)."
    )
    meta_verify_token: SecretStr | None = Field(None, description="The verify token typed into Meta's dashboard.")
    meta_page_token: SecretStr | None = Field(None, description="Page access token: turns Messenger on.")
    meta_instagram_token: SecretStr | None = Field(None, description="Instagram token: turns Instagram on.")
    meta_whatsapp_token: SecretStr | None = Field(None, description="WhatsApp Cloud API token: turns WhatsApp on.")
    meta_graph_url: str = Field("https://graph.facebook.com", pattern=r"^https?://", description="Graph API base URL.")
    meta_instagram_graph_url: str = Field(
        "https://graph.facebook.com",
        pattern=r"^https?://",
        description="Instagram's Graph host: graph.facebook.com (Facebook Login) or graph.instagram.com.",
    )
    meta_graph_version: str = Field("v23.0", pattern=r"^v\d+\.\d+$", description="Graph API version in paths.")
    x_consumer_secret: SecretStr | None = Field(None, description="X app's consumer (API key) secret: CRC, signatures.")
    x_user_token: SecretStr | None = Field(None, description="OAuth 2.0 user token of the brand's X account.")
    x_user_id: str | None = Field(None, pattern=r"^\d+$", description="The brand's X account id (its own posts).")
    x_api_url: str = Field("https://api.x.com", pattern=r"^https?://", description="X API base URL.")
    chatwoot_url: str | None = Field(None, pattern=r"^https?://", description="Chatwoot installation base URL.")
    chatwoot_bot_token: SecretStr | None = Field(None, description="The agent bot's access token: turns Chatwoot on.")
    chatwoot_secret: SecretStr | None = Field(None, description="The agent bot's webhook secret (signs deliveries).")
    chatwoot_allow_unsigned: bool = Field(
        False, description="Accept unsigned deliveries (Chatwoot before signing existed): anyone can post messages."
    )
    chatwoot_max_skew_s: int = Field(300, gt=0, description="Oldest X-Chatwoot-Timestamp accepted (replays).")
    send_rate: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(SEND_RATE),
        description="Replies per second per surface, across every process, e.g. 'x_mention=0.1,telegram=30'.",
    )
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="Largest webhook body accepted (413 above).")

    review_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Comma-separated bearer tokens of the review API."
    )

    session_hours: float = Field(12.0, gt=0, description="How long a reviewer stays signed in to the desk.")
    secure_cookies: bool = Field(
        False, description="Mark the desk's cookie Secure (always set behind HTTPS; HTTPS requests get it anyway)."
    )
    handover_hours: float = Field(168.0, gt=0, description="How long a handed-over conversation stays with people.")
    llm_provider: Literal["openai", "transformers"] = Field(
        "openai",
        description="openai: any OpenAI-compatible server (needs BOT_LLM_BASE_URL); transformers: a local model.",
    )
    llm_base_url: str | None = Field(None, pattern=r"^https?://", description="OpenAI-compatible endpoint.")
    llm_api_key: SecretStr = Field(SecretStr("unused"), description="API key of the LLM endpoint.")
    llm_model: str = Field("gpt-4o-mini", min_length=1, description="Model name; with transformers, its folder.")
    llm_json_mode: Literal["json_schema", "json_object", "prompt"] = Field(
        "json_schema", description="How the answer's JSON is asked for: response_format schema, JSON mode, or words."
    )
    llm_temperature: float = Field(0.3, ge=0, le=2)
    llm_max_tokens: int = Field(300, gt=0)
    llm_timeout: float = Field(20.0, gt=0, description="Seconds before a model request is abandoned (not retried).")
    llm_max_concurrency: int = Field(32, gt=0, description="Model calls in flight per process.")
    llm_retries: int = Field(2, ge=0, description="Retries of a 429, 5xx or dropped connection.")
    llm_backoff_s: float = Field(0.5, ge=0, description="First retry delay (doubling, with jitter).")
    llm_max_retry_wait_s: float = Field(
        10.0, ge=0, description="A longer Retry-After isn't waited for: the draft falls back, the circuit opens."
    )
    llm_breaker_failures: int = Field(5, gt=0, description="Failed drafts in a row that open the circuit.")
    llm_breaker_cooldown_s: float = Field(30.0, gt=0, description="How long an open circuit skips the model.")
    llm_history_turns: int = Field(6, ge=0, description="Turns of the conversation sent with a message.")
    llm_price_prompt: float = Field(0.0, ge=0, description="Price per million prompt tokens (cost metric).")
    llm_price_completion: float = Field(0.0, ge=0, description="Price per million completion tokens.")
    knowledge_passages: int = Field(3, gt=0, description="Passages retrieved per message (plus the intent's own).")

    claim_idle_ms: int = Field(30_000, gt=0, description="A message pending this long is reclaimed by a worker.")
    worker_batch: int = Field(16, gt=0, le=512, description="Messages read (and embedded) per batch.")
    worker_in_flight: int = Field(
        8, gt=0, le=64, description="Batches a worker has in hand: later ones are embedded while earlier ones draft."
    )
    send_in_flight: int = Field(
        64, gt=0, le=4096, description="Replies a worker's sender delivers at once (each waits for its platform)."
    )
    max_deliveries: int = Field(5, gt=0, description="Attempts at one message before it is dead-lettered.")
    send_attempts: int = Field(5, gt=0, description="Delivery attempts of one reply before it goes to review.")
    send_backoff_s: float = Field(1.0, ge=0, description="First retry delay of a delivery; doubles each time.")
    dedup_ttl_s: int = Field(7 * 24 * 3600, gt=0, description="How long a message id is remembered.")
    shutdown_timeout_s: float = Field(20.0, ge=0, description="Grace period for in-flight work on SIGTERM.")

    @property
    def model_cache(self) -> Path:
        """Where tuned layers and trained heads are cached (keyed by what they were trained on)."""
        return self.models_dir or self.data_dir / "models"

    @model_validator(mode="after")
    def _local_model_folder(self) -> Settings:
        if self.llm_provider == "transformers" and not Path(self.llm_model).is_dir():
            raise ValueError(
                f"BOT_LLM_MODEL must be a model folder with BOT_LLM_PROVIDER=transformers: {self.llm_model}"
            )
        return self

    @model_validator(mode="after")
    def _telegram_pair(self) -> Settings:
        """Half a Telegram configuration is a mistake, not a channel that is off: say so at start."""
        if (self.telegram_bot_token is None) != (self.telegram_secret_token is None):
            raise ValueError("Telegram needs both BOT_TELEGRAM_BOT_TOKEN and BOT_TELEGRAM_SECRET_TOKEN")
        return self

    @field_validator("telegram_secret_token")
    @classmethod
    def _telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("1 to 256 characters, each a letter, digit, _ or - (Telegram refuses others)")
        return value

    @model_validator(mode="after")
    def _channel_pairs(self) -> Settings:
        """A platform token without what verifies its deliveries would be a channel that can't hear: say so."""
        meta = [self.meta_page_token, self.meta_instagram_token, self.meta_whatsapp_token]
        if any(meta) and (self.meta_app_secret is None or self.meta_verify_token is None):
            raise ValueError("Meta channels need BOT_META_APP_SECRET and BOT_META_VERIFY_TOKEN")
        if self.x_user_token is not None and (self.x_consumer_secret is None or self.x_user_id is None):
            raise ValueError("X needs BOT_X_CONSUMER_SECRET and BOT_X_USER_ID with BOT_X_USER_TOKEN")
        if self.chatwoot_bot_token is not None:
            if self.chatwoot_url is None:
                raise ValueError("Chatwoot needs BOT_CHATWOOT_URL with BOT_CHATWOOT_BOT_TOKEN")
            if self.chatwoot_secret is None and not self.chatwoot_allow_unsigned:
                raise ValueError("Chatwoot needs BOT_CHATWOOT_SECRET (or BOT_CHATWOOT_ALLOW_UNSIGNED=true)")
        return self

    @field_validator("send_rate", mode="before")
    @classmethod
    def _rates(cls, value: object) -> object:
        """'surface=rate,…' over the defaults: a surface not named keeps its documented limit."""
        if not isinstance(value, str):
            return value
        rates = dict(SEND_RATE)
        for item in filter(None, (part.strip() for part in value.split(","))):
            surface, equals, rate = item.partition("=")
            if surface.strip() not in (*SEND_RATE, "generic"):
                raise ValueError(f"{surface.strip()!r} is not a surface; known: {', '.join([*SEND_RATE, 'generic'])}")
            try:
                rates[surface.strip()] = float(rate)
            except ValueError:
                raise ValueError(f"{item!r} is not surface=replies-per-second") from None
            if not equals or rates[surface.strip()] <= 0:
                raise ValueError(f"{item!r} is not surface=replies-per-second (above 0)")
        return rates

    @field_validator("review_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [token.strip() for token in value.split(",") if token.strip()]
        return value

    @field_validator("review_tokens")
    @classmethod
    def _long_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(token.get_secret_value()) < 16 for token in value):
            raise ValueError("each review token must be at least 16 characters")
        return value


def describe_errors(error: ValidationError) -> list[str]:
    """One line per bad setting, named as the user sets it (BOT_NAME), without echoing secret values."""
    lines = []
    for item in error.errors():
        name = "BOT_" + str(item["loc"][0]).upper() if item["loc"] else "settings"
        lines.append(f"{name}: {item['msg']}")
    return lines
