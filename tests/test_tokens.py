"""Tokens minted without PyJWT (render_common/tokens.py) are ones PyJWT and the services accept."""

from __future__ import annotations

import subprocess
import sys

import jwt
import pytest

from render_common.auth import TokenVerifier
from render_common.config import ROOT, ConfigError, Settings
from render_common.config.client import ClientSettings
from render_common.errors import Unauthenticated
from render_common.tokens import SESSION_TOKEN_TYPE, mint_session_token, mint_token


def test_minted_token_is_verified_with_issuer_audience_and_type() -> None:
    settings = Settings(jwt_issuer="issuer-x", jwt_audience="audience-y")
    token = mint_session_token(settings, "alice", ttl_seconds=60)
    assert TokenVerifier.from_settings(settings).verify(f"Bearer {token}") == "alice"
    claims = jwt.decode(
        token, settings.jwt_secret, algorithms=["HS256"], audience="audience-y", issuer="issuer-x"
    )
    assert claims["typ"] == SESSION_TOKEN_TYPE
    assert claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_token_signed_with_another_secret_or_expired_is_refused() -> None:
    settings = Settings()
    verifier = TokenVerifier.from_settings(settings)
    other = mint_token(settings.with_overrides(jwt_secret="another-secret-" + "x" * 32), "bob")
    with pytest.raises(Unauthenticated):
        verifier.verify(f"Bearer {other}")
    expired = mint_token(settings, "bob", ttl_seconds=-3600)
    with pytest.raises(Unauthenticated):
        verifier.verify(f"Bearer {expired}")


def test_cli_start_imports_neither_pyjwt_nor_cryptography_nor_pydantic() -> None:
    """The `render` CLI mints its token at every start: PyJWT would import cryptography;
    it reads its settings without pydantic-settings (render_common/config/client.py)."""
    heavy = "{'jwt', 'cryptography', 'pydantic', 'pydantic_settings'}"
    probe = f"import sys, services.cli.__main__; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_client_settings_read_what_the_services_read() -> None:
    """The CLI's settings have the services' defaults and read the same variables."""
    assert ClientSettings.from_env({}) == ClientSettings(
        effective_render_api_addr=Settings().effective_render_api_addr,
        effective_progress_addr=Settings().effective_progress_addr,
        jwt_secret=Settings().jwt_secret,
    )
    environ = {
        "RENDER_API_PORT": "6001",
        "PROGRESS_ADDR": "progress.internal:7000",
        "PROGRESS_PORT": "",  # empty counts as unset
        "JWT_SECRET": "s" * 40,
        "JWT_ISSUER": "iss",
        "JWT_AUDIENCE": "aud",
    }
    client, full = ClientSettings.from_env(environ), Settings.from_env(environ)
    for name in ("effective_render_api_addr", "effective_progress_addr", "jwt_secret"):
        assert getattr(client, name) == getattr(full, name)
    assert (client.jwt_issuer, client.jwt_audience) == (full.jwt_issuer, full.jwt_audience)
    with pytest.raises(ConfigError, match="RENDER_API_PORT='x'"):
        ClientSettings.from_env({"RENDER_API_PORT": "x"})
