"""Settings from CERTLEDGER_* environment variables, with embedded defaults: a SQLite file and
the local anvil node in the data directory. Library code never reads the environment; this does."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: SQLite's page cache per connection by default (Settings.sqlite_cache_mib, db.session.make_engine)
SQLITE_CACHE_MIB = 8


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CERTLEDGER_", extra="ignore", frozen=True)

    data_dir: Path = Path(".certledger")
    database_url: str | None = Field(None, description="SQLAlchemy async URL; default: SQLite in data_dir")
    rpc_url: str | None = Field(
        None, description="JSON-RPC endpoint; default: the local anvil (started if needed)"
    )
    manifest: Path | None = Field(None, description="deployment manifest; default: data_dir/deployment.json")
    keystore_passphrase: SecretStr | None = Field(
        None,
        description="passphrase of the issuer and operator keystores; default: generated in data_dir/secrets",
    )
    governance_key: SecretStr | None = Field(
        None, description="governance account key (default: dev key on anvil)"
    )
    node_port: int | None = None
    rpc_batch_calls: int = Field(
        50,
        ge=1,
        le=10_000,
        description="JSON-RPC calls per batch request the pipeline sends; at most what the node "
        "takes (Besu: --rpc-http-max-batch-size, default 50)",
    )
    batch_size: int = Field(1000, ge=1, le=100_000)
    batch_window_seconds: float = Field(2.0, gt=0)
    confirmations: int = Field(0, ge=0)
    tx_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="how long a request waits for its transaction to be mined before answering 503",
    )
    instance_id: str = Field(default_factory=socket.gethostname)
    public_url: str = "http://127.0.0.1:8000"
    max_upload_bytes: int = 64 * 1024 * 1024
    public_rate_limit: str = Field(
        "120/minute",
        description="per client address, on the public verify page's checks (no API key there); "
        "'N/second|minute|hour', several separated by ';', or 'off'",
    )
    signer_timeout_seconds: float = Field(
        30.0, gt=0, description="how long the registry waits for an issuer's own signer to answer"
    )
    signer_retry_seconds: float = Field(
        30.0,
        gt=0,
        description="how long a batch that an issuer's signer refused or did not answer waits "
        "before it is sent to the signer again (it stays sealed meanwhile)",
    )
    sqlite_cache_mib: int = Field(
        SQLITE_CACHE_MIB,
        ge=1,
        le=4096,
        description="SQLite's page cache per connection, in MiB: larger keeps more of the random-key "
        "indexes in memory while issuing; the service's memory grows with the database until every "
        "connection's cache is full (this times the pool's connections). 8 MiB kept issuing 1,000,000 "
        "credentials as fast as 64 MiB, with the service's memory flat (docs/BENCHMARKS.md, stop 31)",
    )
    access_log: bool = Field(
        False,
        description="a log line per HTTP request (uvicorn's access log). Off by default: /metrics "
        "counts every request by route and status and times it; the line cost the verify API a "
        "seventh of its rate (docs/BENCHMARKS.md, stop 34)",
    )
    pipeline_enabled: bool = True
    indexer_enabled: bool = True
    poll_interval_seconds: float = 0.2

    @field_validator("public_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        if value.strip().lower() != "off":
            from limits import parse_many

            try:
                parse_many(value)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a rate limit: write e.g. '120/minute', '10/second;500/hour' or 'off'"
                ) from None
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'registry.db').resolve()}"

    @property
    def manifest_path(self) -> Path:
        return self.manifest or self.data_dir / "deployment.json"

    def passphrase(self) -> str:
        """The keystore passphrase; in the embedded setup generated once into data_dir/secrets."""
        if self.keystore_passphrase is not None:
            return self.keystore_passphrase.get_secret_value()
        path = self.data_dir / "secrets" / "keystore-passphrase"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return path.read_text().strip()
