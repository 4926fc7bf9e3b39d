"""The OpenAPI schema states what validation enforces, and every error an operation can answer."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from deliveries.input_limits import MAX_ID, MAX_SECONDS, MAX_TEXT_CHARACTERS


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_message_creation_states_its_limits_and_takes_no_other_field(schema):
    create = schema["components"]["schemas"]["MessageCreate"]
    properties = create["properties"]
    assert create["additionalProperties"] is False
    assert (properties["valid_for"]["minimum"], properties["valid_for"]["maximum"]) == (1, MAX_SECONDS)
    assert properties["depends_on"]["maximum"] == MAX_ID
    assert properties["body"]["maxLength"] == MAX_TEXT_CHARACTERS
    assert properties["media_urls"]["maxItems"] == 10


def test_the_batch_states_both_of_its_limits(schema):
    batch = schema["paths"]["/api/v1/messages/batch/"]["post"]
    assert schema["components"]["schemas"]["MessageBatch"]["properties"]["messages"]["maxItems"] == 10_000
    assert "MAX_REQUEST_BYTES" in batch["responses"]["413"]["description"]


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        ("/api/v1/messages/", "post", {"201", "400", "401", "403", "404", "413", "415", "422", "429"}),
        ("/api/v1/messages/", "get", {"200", "400", "401", "403", "404", "429"}),
        ("/api/v1/campaigns/{id}/launch/", "post", {"200", "400", "401", "403", "404", "409", "429"}),
    ],
)
def test_every_operation_documents_its_error_answers_with_a_json_body(schema, path, method, codes):
    responses = schema["paths"][path][method]["responses"]
    assert codes <= set(responses)
    for code in codes - {"200", "201"}:
        assert responses[code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_local_times_are_documented_without_an_offset(schema):
    quiet = schema["components"]["schemas"]["Campaign"]["properties"]["quiet_hours_start"]
    assert "format" not in quiet
    assert quiet["example"] == "08:00"
