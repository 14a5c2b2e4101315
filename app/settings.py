"""One typed settings object for memex.

Resolution order (highest first): explicit arguments, `MEMEX_*` environment variables,
`$MEMEX_HOME/settings.json`, defaults. `MEMEX_HOME` (or `memex --home DIR`) moves all user
data; tests always point it at a temporary folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from app.errors import MemexError

SETTINGS_FILE = "settings.json"


def default_home() -> Path:
    env = os.environ.get("MEMEX_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("memex", appauthor=False))


class _JsonFileSource(PydanticBaseSettingsSource):
    """Reads `settings.json` in the data folder; a corrupt file is a clear error."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path):
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(
        self, field: Any, field_name: str
    ) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MemexError(
                f"The settings file {self.path} is not valid JSON ({exc}); fix or delete it.",
                kind="bad_settings",
            ) from exc
        if not isinstance(data, dict):
            raise MemexError(
                f"The settings file {self.path} must hold a JSON object; fix or delete it.",
                kind="bad_settings",
            )
        return data


class Settings(BaseSettings):
    """Everything configurable in memex. Pass it down; never read globals."""

    model_config = SettingsConfigDict(env_prefix="MEMEX_", extra="ignore", validate_default=True)

    home: Path = Field(default_factory=default_home, description="folder that holds all user data")

    # memory
    embed_model: str = Field(
        "", description="sentence-transformers folder; empty = bundled all-MiniLM-L6-v2"
    )
    embed_batch: int = Field(64, ge=1, le=4096, description="texts embedded per batch")
    chroma_url: str = Field("", description="Chroma server URL; empty = embedded PersistentClient")
    chunk_chars: int = Field(1200, ge=200, le=20000, description="target characters per chunk")
    import_max_memories_per_file: int = Field(
        5000,
        ge=1,
        description="a file that would become more memories is refused (`--max-memories-per-file`)",
    )

    # inference
    backend: str = Field("llamacpp", description="inference backend name (llamacpp, moe)")
    model_path: str = Field(
        "", description="GGUF model path; empty = bundled SmolLM2-135M-Instruct"
    )
    adapter_path: str = Field(
        "", description="LoRA adapter (GGUF) applied at load time; empty = active adapter"
    )
    n_ctx: int = Field(4096, ge=256, le=131072, description="context window in tokens")
    threads: int = Field(0, ge=0, le=256, description="CPU threads; 0 = physical cores")
    max_answer_tokens: int = Field(256, ge=8, le=8192)
    answer_strategy: str = Field(
        "extract",
        description="how answers are worded: extract (evidence spans, no model), "
        "constrained (the model picks a span under a grammar), generate (free text, verified)",
    )
    prompt_lookup_tokens: int = Field(
        0,
        ge=0,
        le=64,
        description="prompt-lookup draft length for greedy answers (at most 31 are used); "
        "0 = off. Text identical to plain greedy decoding with flash attention, which it turns "
        "on; about 1.1x decode on quoting answers with the bundled model on 2 CPU cores",
    )
    save_chats: bool = Field(False, description="store terminal/GUI conversations as chat memories")
    lora_scale: float = Field(1.0, ge=0.0, le=4.0, description="strength of the LoRA adapter")
    llama_extra_buffers: str = Field(
        "auto",
        description=(
            "llama.cpp extra CPU buffer types (AMX, repack): auto|on|off; auto = off on AMX CPUs"
        ),
    )
    inbox_use_model: bool = Field(
        True, description="let the local model propose profile values too"
    )
    model_paths: list[str] = Field(
        default_factory=list, description="GGUF files added with `memex models add` (used in place)"
    )

    # remote engines (backend "openai")
    openai_base_url: str = Field(
        "", description="OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1"
    )
    openai_api_key: str = Field("", description="bearer token for that server; empty = none")
    openai_model: str = Field("", description="model name the server knows; empty = its default")
    openai_timeout_s: float = Field(
        120.0, gt=0, le=3600, description="seconds to wait for the server"
    )
    allow_remote_backend: bool = Field(
        False, description="allow sending memories to a model server that is not on this computer"
    )

    # MoE engine
    moe_model: str = Field("", description="MoE checkpoint folder, 'moefied' or 'tiny'")
    moe_budget: str = Field(
        "2x", description="fast-tier budget: fraction, bytes (2GB) or multiple (2x)"
    )
    moe_policy: str = Field("lru", description="expert cache policy")
    moe_device: Literal["cpu", "cuda", "auto"] = "auto"
    moe_quant: Literal["none", "int8", "int4", "int4_int2", "fate"] = Field(
        "none",
        description="how MoE experts are stored and moved (none = exact fp32; "
        "fate = int4_int2's old name)",
    )
    moe_testbed_dir: str = Field(
        "",
        description="where real-size MoE testbeds (GBs) are written; empty = the user cache folder",
    )

    # local API
    api_port: int = Field(8765, ge=1, le=65535)
    api_allowed_origins: list[str] = Field(default_factory=list)
    api_max_body_bytes: int = Field(1_048_576, ge=1024)
    api_rate_per_minute: int = Field(120, ge=1)

    # the vault (encryption at rest; `memex vault`)
    passphrase_file: str = Field(
        "", description="file holding the vault passphrase (MEMEX_PASSPHRASE also works)"
    )
    vault_auto_lock_minutes: float = Field(
        30.0,
        ge=0,
        description=(
            "lock the vault after this long unused; 0 = only at logout or `memex vault lock`"
        ),
    )

    # the resident service (app/service)
    service_idle_minutes: float = Field(
        30.0, ge=0, description="stop the service after this long without a request; 0 = never"
    )

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, v: Any) -> Any:
        return Path(v).expanduser() if isinstance(v, (str, Path)) else v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        home = _home_hint(init_settings)
        return (init_settings, env_settings, _JsonFileSource(settings_cls, home / SETTINGS_FILE))

    # -- derived paths -------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.home / "memex.db"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def bridge_dir(self) -> Path:
        return self.home / "bridge"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(self.home, 0o700)
        except OSError:
            pass
        return self.home

    def save(self, **changes: Any) -> Settings:
        """Persist `changes` to settings.json (merged with what is there) and return new
        settings."""
        path = self.ensure_home() / SETTINGS_FILE
        current: dict[str, Any] = {}
        if path.exists():
            current = _JsonFileSource(Settings, path)()
        for key, value in changes.items():
            if key not in Settings.model_fields or key == "home":
                raise MemexError(f"Unknown setting {key!r}.", kind="bad_input")
            current[key] = value
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(current, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)
        return load_settings(home=self.home)


def _home_hint(init_settings: PydanticBaseSettingsSource) -> Path:
    try:
        init = init_settings()
    except Exception:  # pragma: no cover - defensive
        init = {}
    home = init.get("home") if isinstance(init, dict) else None
    return Path(home).expanduser() if home else default_home()


def load_settings(home: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings; `home` wins over MEMEX_HOME. Invalid values become a MemexError."""
    kwargs: dict[str, Any] = dict(overrides)
    if home is not None:
        kwargs["home"] = Path(home).expanduser()
    try:
        return Settings(**kwargs)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise MemexError(
            f"Invalid setting {loc or '?'}: {first.get('msg', 'bad value')}.", kind="bad_settings"
        ) from exc
