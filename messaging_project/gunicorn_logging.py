"""gunicorn's access and error logs without personal data or secrets in them: `logger_class` in gunicorn.conf.py.

Request lines, paths, query strings and the Referer go through messaging_project/log_redaction.py; credential
headers never appear, even if a log format asks for them. gunicorn's own handlers get the same last filter as the
application's (RedactSensitiveData) and, with LOG_FORMAT=json, the same JSON lines.
"""

from __future__ import annotations

import os

from gunicorn.glogging import Logger

from .log_context import JsonFormatter
from .log_redaction import MASK, RedactSensitiveData, loggable_path, loggable_query, loggable_url

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-twilio-signature", "x-hub-signature-256"}
)


def _header_name(atom: str) -> str:
    """`{authorization}i` -> authorization; `{http_authorization}e` -> authorization."""
    name = atom[1:-2]
    return name.removeprefix("http_").replace("_", "-") if atom.endswith("}e") else name


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        # Read from the environment as the settings read it: gunicorn sets up its logs before Django's settings.
        as_json = os.environ.get("LOG_FORMAT", "").strip().lower() == "json"
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(RedactSensitiveData())
                if as_json:
                    handler.setFormatter(JsonFormatter())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        target = loggable_url(environ.get("RAW_URI") or "")
        atoms["r"] = f"{environ.get('REQUEST_METHOD')} {target} {environ.get('SERVER_PROTOCOL')}"
        atoms["U"] = loggable_path(environ.get("PATH_INFO") or "")
        atoms["q"] = loggable_query(environ.get("QUERY_STRING") or "")
        atoms["f"] = loggable_url(environ.get("HTTP_REFERER", "-"))
        for atom in [key for key in atoms if key.startswith("{") and key[-2:] in ("}i", "}o", "}e")]:
            name = _header_name(atom)
            if name in SECRET_HEADERS:
                atoms[atom] = MASK
            elif name in ("referer", "raw-uri", "request-uri"):
                atoms[atom] = loggable_url(str(atoms[atom]))
            elif name in ("path-info", "script-name"):
                atoms[atom] = loggable_path(str(atoms[atom]))
            elif name == "query-string":
                atoms[atom] = loggable_query(str(atoms[atom]))
        return atoms
