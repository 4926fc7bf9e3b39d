"""Adaptations of libraries' internals, kept here, one module per library, each for the versions it was written for.

Each shim replaces something a library does slowly on our hot paths with code that gives the same answer for less
CPU. Each one checks, when imported, that the installed library is within the range it was written and tested
against (`version_check`): an upgrade outside it fails at start-up with ShimVersionError until someone re-runs the
shim's equivalence test against the new version and widens the range (or removes the shim). Each can be turned off
for a measurement, `TIDINGS_SHIMS_OFF=anymail,drf` (read once, at import): off, the library is used as
documented. `benchmarks/shims.py` measures each one's gain end to end that way (A/B interleaved).

The index: switch (module): what it replaces; versions; equivalence test (tests/deliveries/shims/); gain measured
end to end by benchmarks/shims.py on 7 December 2026, a loaded machine (benchmarks/results/2026-12-07-shims.json).

- `anymail` (anymail.py): `AnymailBaseBackend._send` and `post_to_esp`, the ESP call on libcurl; django-anymail
  15.2, requests 2.34; test_anymail.py. Worker CPU per email 1.62 → 0.70 ms.
- `phonenumbers` (phonenumbers.py): `parse` + `is_valid_number` for numbers written in E.164; phonenumbers 9.0;
  test_phonenumbers.py. send_bulk +21 %, its storing core in one process +58 %, the batch API +22 %.
- `drf` (drf.py): DRF's validation of plain string fields, its per-instance field building; djangorestframework
  3.18; test_drf.py. Batch API 500 → 3,900 messages/s, single-message API +12 %.

Removed for gaining under 3 % end to end, the libraries now used as documented: twilio's header cache (3 µs of a
send's 450), and together twilio's date parser cached and a C-speed `quote_plus` of provider forms (SMS rate +0.5 %,
worker CPU per SMS -0.4 %, median of 4 interleaved rounds: benchmarks/results/2026-12-07-shims-sms.json).
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version

from django.core.exceptions import ImproperlyConfigured
from packaging.specifiers import SpecifierSet
from packaging.version import Version

SWITCHES = ("anymail", "phonenumbers", "drf")

# Read once: a shim is on or off for the life of the process (a measurement starts its processes with it set).
_OFF = frozenset(name.strip() for name in os.environ.get("TIDINGS_SHIMS_OFF", "").split(",") if name.strip())


class ShimVersionError(ImproperlyConfigured):
    """An installed library is outside the version range a shim was written against."""


def shim_enabled(name: str) -> bool:
    """Whether the shim `name` is in use: every shim is, unless TIDINGS_SHIMS_OFF names it (or `all`)."""
    if name not in SWITCHES:
        raise ValueError(f"No shim named {name!r}; the shims are {', '.join(SWITCHES)}")
    return name not in _OFF and "all" not in _OFF


def installed_version(library: str) -> Version:
    """The installed version of a distribution; `python` for the interpreter."""
    if library == "python":
        return Version(".".join(map(str, sys.version_info[:3])))
    return Version(version(library))


def version_check(shim: str, library: str, supported: str) -> None:
    """Refuse to start when `library` is outside `supported` (a PEP 440 range) and the shim is on."""
    if not shim_enabled(shim):
        return
    installed = installed_version(library)
    if installed not in SpecifierSet(supported):
        raise ShimVersionError(
            f"{library} {installed} is outside {supported}, the versions the shim {shim!r} (deliveries/shims/) was "
            f"written against. Run its equivalence test (tests/deliveries/shims/) against {installed} and widen the "
            f"range if it passes, or remove the shim; TIDINGS_SHIMS_OFF={shim} starts without it meanwhile."
        )
