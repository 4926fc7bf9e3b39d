"""The icon browsers ask for on every page: found, rather than a 404 in the log for each page view."""

from pathlib import Path

from django.contrib.staticfiles import finders


def test_favicon_ico_leads_to_the_icon_that_static_files_serve(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"] == "/static/console/favicon.svg"
    found = finders.find("console/favicon.svg")
    assert found and Path(found).read_text().startswith("<svg")
