# -*- test-case-name: tests.test_source -*-
"""Credential checks shared by sources and the admin interface, in constant time."""

from __future__ import annotations

import hmac
from typing import Union

from ..config import MountConfig
from ..config._schema import AuthConfig

Text = Union[str, bytes]


def same_secret(given: Text, expected: Text) -> bool:
    """Compare two secrets without leaking, through timing, how much matched."""
    if isinstance(given, str):
        given = given.encode("utf-8")
    if isinstance(expected, str):
        expected = expected.encode("utf-8")
    return hmac.compare_digest(given, expected)


def admin_credentials_ok(user: Text, password: Text, auth: AuthConfig) -> bool:
    """The admin user and password (``auth { admin_user admin_password }``)."""
    user_ok = same_secret(user, auth.admin_user)
    password_ok = same_secret(password, auth.admin_password)
    return user_ok and password_ok


def source_credentials_ok(user: Text, password: Text, mount_config: MountConfig,
                          source_password: str) -> bool:
    """The mount's user (``source`` by default) with its password, else the global one."""
    expected = mount_config.password or source_password
    user_ok = same_secret(user, mount_config.username)
    password_ok = same_secret(password, expected)
    return user_ok and password_ok
