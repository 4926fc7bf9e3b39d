"""Teaches drf-spectacular how our API key authentication looks in the OpenAPI schema."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "deliveries.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <API key>`. Each endpoint needs a scope of the key (403 "
            "naming it otherwise): see the README's API keys table. A key with a rate gets 429 with Retry-After.",
        }


# Errors any operation can answer, as DRF words them: validation (400), a missing or revoked key (401), a key
# without the right (403), nothing there or a page past the end (404), a body over MAX_REQUEST_BYTES (413) or of
# another media type (415), too many requests (429).
COMMON_ERRORS = {
    "400": "Invalid input: each field named with what is wrong with it.",
    "401": "No API key, or one that is unknown, revoked or expired.",
    "403": "The API key lacks the scope this needs.",
    "404": "No such object, or a page past the end.",
    "429": "Too many requests for this API key; retry after `Retry-After` seconds.",
}
BODY_ERRORS = {
    "413": "The request body is over MAX_REQUEST_BYTES (or a batch over 10,000 messages).",
    "415": "The request body is not JSON (or form data).",
}
ERROR_SCHEMA = {
    "description": '`{"detail": reason}`, or field names each with their errors (a list of them for a batch item).',
    "anyOf": [
        {"type": "object", "additionalProperties": True},
        {"type": "array", "items": {}},
    ],
}


def document_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: every operation documents the errors it can answer, with their JSON
    body, so a client (and schemathesis' status code and schema checks) knows them all; request bodies state that
    they take no other fields than their own."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            # Serializers refuse fields they do not declare (deliveries.api.strict_serializers): the schema says so.
            for media in operation.get("requestBody", {}).get("content", {}).values():
                name = media.get("schema", {}).get("$ref", "").rpartition("/")[2]
                if name in components and components[name].get("type") == "object":
                    components[name]["additionalProperties"] = False
            responses = operation.setdefault("responses", {})
            codes = {**COMMON_ERRORS, **(BODY_ERRORS if "requestBody" in operation else {})}
            for code, description in codes.items():
                responses.setdefault(code, {"description": description})
            for code, response in responses.items():
                if code.startswith("4") and "content" not in response:
                    response["content"] = error
                    if response.get("description", "No response body") == "No response body":
                        response["description"] = "Refused: `detail` says why."
    return result
