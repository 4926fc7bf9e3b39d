"""Campaign services, split by topic: templates, sms_segments, contacts, segments, contact_imports.

The names other apps import (deliveries renders templates through them) are re-exported here.
"""

from .templates import RenderedContent, TemplateRenderError, template_render

__all__ = ["RenderedContent", "TemplateRenderError", "template_render"]
