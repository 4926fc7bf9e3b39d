"""Schemathesis against the API's own OpenAPI schema, through Django's WSGI app: whatever a client sends, no
answer is a 5xx, every status code and body is one the schema documents, and the schema says what validation
enforces. Bounded (FUZZ_MAX_EXAMPLES per operation, derandomized) so CI runs the same cases every time."""

import json
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deliveries.services.api_keys import api_key_create

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "150"))
# The schema's examples, every boundary case it defines (coverage), then random requests: about 2.5 minutes here.
PHASES = os.environ.get("FUZZ_PHASES", "examples,coverage,fuzzing").split(",")


def _api_schema() -> dict:
    """The schema /api/schema/ serves, generated in-process (the route itself may need a key or be off)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


# The schema's own route is not an API operation.
schema = schemathesis.openapi.from_dict(_api_schema()).exclude(path="/api/schema/")
schema.app = get_wsgi_application()
schema.config.phases.update(phases=PHASES)


@pytest.fixture
def bearer(db):
    _, raw = api_key_create(name="fuzzer")
    # As Django's test client does: the test's transaction holds the connection, which the WSGI handler would close
    # at the end of each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {raw}"}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_gets_a_server_error_or_an_answer_the_schema_does_not_describe(case, bearer):
    case.call_and_validate(
        headers=bearer,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
