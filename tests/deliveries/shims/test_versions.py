"""Every shim is on in the tests, accepts the installed libraries, and refuses to start with one it was not written
for (so an upgrade fails here, in CI, before it fails at start-up)."""

import importlib

import pytest

from deliveries import shims
from deliveries.shims import ShimVersionError, shim_enabled, version_check

SHIM_MODULES = ["anymail", "phonenumbers", "drf"]


@pytest.mark.parametrize("module", SHIM_MODULES)
def test_each_shim_accepts_the_installed_library(module):
    importlib.import_module(f"deliveries.shims.{module}")  # its version_check runs at import


def test_every_shim_is_on_in_the_tests():
    assert all(shim_enabled(name) for name in shims.SWITCHES)


def test_a_library_outside_the_range_stops_the_start_with_the_way_out():
    with pytest.raises(ShimVersionError, match=r"django-anymail .* is outside >=1,<2.*TIDINGS_SHIMS_OFF=anymail"):
        version_check("anymail", "django-anymail", ">=1,<2")


def test_a_shim_turned_off_checks_no_version(monkeypatch):
    monkeypatch.setattr(shims, "_OFF", frozenset({"anymail"}))
    assert not shim_enabled("anymail") and shim_enabled("drf")
    version_check("anymail", "django-anymail", ">=1,<2")
    monkeypatch.setattr(shims, "_OFF", frozenset({"all"}))
    assert not any(shim_enabled(name) for name in shims.SWITCHES)


def test_an_unknown_switch_is_a_mistake():
    with pytest.raises(ValueError, match="No shim named"):
        shim_enabled("anymails")
