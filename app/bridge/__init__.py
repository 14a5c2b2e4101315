"""Browser bridge: field classification, native-messaging host, pairing, site permissions.

Re-exports only; nothing heavy is imported here (PyNaCl and selectolax load on use).
"""

from app.bridge.classify import classify_field, classify_form, parse_autocomplete
from app.bridge.fields import Classification, FieldDescriptor, FormContext

__all__ = [
    "Classification",
    "FieldDescriptor",
    "FormContext",
    "classify_field",
    "classify_form",
    "parse_autocomplete",
]
