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
