"""Settings of the WeCom (企业微信) connection, read from ``ZHONGTAI_WECOM_*`` variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WeComSettings(BaseSettings):
    """The corp's callback credentials (set in WeCom's admin console for the customer-contact
    app) and the secret its contact API is called with. Unset, the callback answers 404."""

    model_config = SettingsConfigDict(env_prefix="ZHONGTAI_WECOM_", env_file=".env", extra="ignore")

    corp_id: str | None = Field(default=None, description="The corp id (ww...).")
    token: SecretStr | None = Field(default=None, description="The callback Token.")
    encoding_aes_key: SecretStr | None = Field(
        default=None, description="The callback EncodingAESKey (43 characters)."
    )
    secret: SecretStr | None = Field(
        default=None, description="The customer-contact secret, to look up contacts' unionid."
    )
    api_base_url: str = Field(default="https://qyapi.weixin.qq.com")
    freshness_seconds: int = Field(
        default=300, gt=0, description="Callbacks older or newer than this are refused."
    )

    @property
    def callbacks_configured(self) -> bool:
        return bool(self.corp_id and self.token and self.encoding_aes_key)


@lru_cache
def wecom_settings() -> WeComSettings:
    return WeComSettings()
