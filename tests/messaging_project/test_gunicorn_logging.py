"""gunicorn's access log keeps phone numbers, email addresses, unsubscribe tokens and credentials out."""

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from types import SimpleNamespace

import requests
from gunicorn.config import Config

from messaging_project.gunicorn_logging import RedactingLogger
from tests.support import ROOT

PHONE = "+14155550100"
EMAIL = "ada@example.com"
TOKEN = "MTIz:1vAbCdEfGhIjKlMnOpQrStUvWxYz"


def logged_line(tmp_path, *, raw_uri, headers=(), access_log_format=None) -> str:
    """What the real logger class writes for one request, as gunicorn calls it."""
    log_file = tmp_path / "access.log"
    cfg = Config()
    cfg.set("accesslog", str(log_file))
    if access_log_format:
        cfg.set("access_log_format", access_log_format)
    logger = RedactingLogger(cfg)
    path, _, query = raw_uri.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": raw_uri,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers},
    }
    request = SimpleNamespace(headers=[(name.upper(), value) for name, value in headers])
    response = SimpleNamespace(status="200 OK", sent=2, headers=[("Content-Type", "application/json")])
    logger.access(response, request, environ, timedelta(milliseconds=3))
    for handler in logger.access_log.handlers:
        handler.flush()
    return log_file.read_text()


def test_contact_filters_by_phone_and_email_are_masked_and_harmless_ones_kept(tmp_path):
    line = logged_line(tmp_path, raw_uri=f"/api/v1/contacts/?phone=%2B14155550100&email={EMAIL}&page=2")
    assert '"GET /api/v1/contacts/?phone=***&email=***&page=2 HTTP/1.1" 200' in line
    assert "4155550100" not in line and EMAIL not in line


def test_an_unsubscribe_token_in_the_path_and_the_referer_is_masked(tmp_path):
    line = logged_line(
        tmp_path,
        raw_uri=f"/unsubscribe/{TOKEN}/",
        headers=[("Referer", f"https://tidings.example.com/unsubscribe/{TOKEN}/?to={PHONE}")],
    )
    assert '"GET /unsubscribe/***/ HTTP/1.1"' in line
    assert '"https://tidings.example.com/unsubscribe/***/?to=***"' in line
    assert TOKEN not in line and "4155550100" not in line


def test_credentials_stay_out_even_when_a_log_format_asks_for_them(tmp_path):
    line = logged_line(
        tmp_path,
        raw_uri="/api/v1/messages/?status=queued",
        headers=[("Authorization", "Bearer tid_secret_key"), ("Cookie", "sessionid=abc")],
        access_log_format="%(r)s %(q)s %(U)s %({authorization}i)s %({cookie}i)s %({http_authorization}e)s",
    )
    assert line.strip() == "GET /api/v1/messages/?status=queued HTTP/1.1 status=queued /api/v1/messages/ *** *** ***"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_gunicorn_started_as_the_procfile_does_logs_requests_without_personal_data():
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "messaging_project.settings.test", "PYTHONUNBUFFERED": "1"}
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "messaging_project.wsgi", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "1", "--worker-class", "gthread", "--threads", "2", "--access-logfile", "-"],
        cwd=ROOT,  # where gunicorn.conf.py is, as on the platform
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/health/live", timeout=5)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        requests.get(f"{base}/health/live", params={"phone": PHONE, "email": EMAIL}, timeout=5)
        requests.get(f"{base}/unsubscribe/{TOKEN}/", timeout=5)
    finally:
        web.terminate()
        output, _ = web.communicate(timeout=30)
    assert "GET /health/live?phone=***&email=*** HTTP/1.1" in output
    assert "GET /unsubscribe/***/ HTTP/1.1" in output
    assert TOKEN not in output and EMAIL not in output and "4155550100" not in output


def test_with_log_format_json_the_access_line_is_a_json_object_and_the_error_log_masks_numbers(tmp_path, monkeypatch):
    import json
    import logging

    monkeypatch.setenv("LOG_FORMAT", "json")
    line = logged_line(tmp_path, raw_uri="/api/v1/contacts/?phone=%2B14155550100&page=2")
    record = json.loads(line)
    assert record["logger"] == "gunicorn.access"
    assert '"GET /api/v1/contacts/?phone=***&page=2 HTTP/1.1" 200' in record["message"]

    cfg = Config()
    cfg.set("errorlog", str(tmp_path / "error.log"))
    logger = RedactingLogger(cfg)
    logger.error_log.log(logging.ERROR, "Worker failed sending to %s", PHONE)
    for handler in logger.error_log.handlers:
        handler.flush()
    error = json.loads((tmp_path / "error.log").read_text())
    assert error["message"] == "Worker failed sending to +1415•••0100"
