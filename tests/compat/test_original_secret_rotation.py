# The original implementation's (signalpy-kernel 0.4.0) credential-rotation test, verbatim but
# for the import lines (tests/test_examples.py::TestSecretRotation).
# ruff: noqa
import asyncio
import pytest
from pydantic import BaseModel

from signalpy_lab.kernel import (
    Kernel, component, provides, requires, runnable, lifecycle,
    computed, effect,
)
from signalpy_lab.providers.config import ConfigProvider
from signalpy_lab.providers.logging import LoggingProvider
from signalpy_lab.providers.credentials import CredentialProvider


class TestSecretRotation:
    @pytest.mark.asyncio
    async def test_effect_fires_on_credential_change(self):
        """Credential change in config triggers consumer @effect."""
        reconnect_log = []

        @component("test-db", depends=["config", "credentials"])
        @requires(config="IConfig", creds="ICredentials")
        class TestDB:
            @lifecycle.activate
            def activate(self):
                self._key = None

            @effect
            def on_cred_change(self):
                key = self.rt.creds.get("api_key", target="prod")
                if key and key != self._key:
                    self._key = key
                    reconnect_log.append(key)

        kernel = Kernel()
        kernel.discover([ConfigProvider, LoggingProvider, CredentialProvider, TestDB])
        kernel.instantiate("config", properties={
            "defaults": {
                "apps": {"test-db": {"targets": {"prod": {"api_key": "key-v1"}}}}
            }
        })
        await kernel.boot()

        assert reconnect_log == ["key-v1"]

        # Rotate the secret
        config = kernel.registry.require("IConfig")
        config.set("apps.test-db.targets.prod.api_key", "key-v2")
        assert reconnect_log == ["key-v1", "key-v2"]

        # Rotate again
        config.set("apps.test-db.targets.prod.api_key", "key-v3")
        assert reconnect_log == ["key-v1", "key-v2", "key-v3"]

        await kernel.shutdown()
