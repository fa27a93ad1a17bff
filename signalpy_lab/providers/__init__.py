"""The embedded providers: config, logging, credentials and storage components.

Each is an ordinary component built on ``signalpy_lab.kernel``; each hands consumers a
handle scoped to them (see ``Registry.bind``).
"""

from .config import ConfigProvider, ConfigValue, ConfigView, TenantConfig
from .credentials import CredentialHandle, CredentialProvider
from .logging import LoggingProvider
from .storage import StorageHandle, StorageProvider

__all__ = [
    "DEFAULT_PROVIDERS",
    "ConfigProvider",
    "ConfigValue",
    "ConfigView",
    "CredentialHandle",
    "CredentialProvider",
    "LoggingProvider",
    "StorageHandle",
    "StorageProvider",
    "TenantConfig",
]

#: The embedded default set, in the order a lab kernel discovers them.
DEFAULT_PROVIDERS = (ConfigProvider, LoggingProvider, CredentialProvider, StorageProvider)
