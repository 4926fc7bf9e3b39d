"""The contact import as a django-import-export resource: used by the admin's Import page and, through
campaigns.services.contact_imports, by `manage.py import_contacts`, so both apply the same rules.

Each row is checked by campaigns.services.contacts; a row is matched to an existing contact by phone, else by
email (an upsert); a row that changes nothing is skipped without a write, which makes a second import of the
same file a no-op. Columns that are not contact fields become custom attributes. Blank cells leave the
contact's value as it is. Rejected rows are reported by their line in the file (the header is line 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from import_export import resources
from import_export.results import RowResult

from .models import Contact, ContactList
from .services.contacts import CONSENT_FIELDS, attribute_name_problem, contact_fields_clean

CONTACT_COLUMNS = ("name", "phone", "email", "language", "time_zone", *CONSENT_FIELDS)
# Other spellings of the column names, after lower-casing and turning spaces and dashes into underscores.
COLUMN_ALIASES = {
    "full_name": "name",
    "phone_number": "phone",
    "mobile": "phone",
    "e_mail": "email",
    "email_address": "email",
    "lang": "language",
    "locale": "language",
    "timezone": "time_zone",
    "tz": "time_zone",
}
# Fields compared to tell whether a row changes a contact.
_COMPARED = ("name", "phone", "email", "language", "time_zone", "attributes", *CONSENT_FIELDS)


def normalize_header(header: str) -> str:
    name = str(header or "").strip().lower().replace(" ", "_").replace("-", "_")
    return COLUMN_ALIASES.get(name, name)


def contact_import_headers(headers: list[str]) -> list[str]:
    """The file's column names normalised, or ValidationError saying why the file cannot be imported at all."""
    names = [normalize_header(header) for header in headers]
    problems = []
    if "phone" not in names and "email" not in names:
        problems.append("The file needs a 'phone' or an 'email' column (the header is its first line).")
    duplicated = sorted({name for name in names if name and names.count(name) > 1})
    if duplicated:
        problems.append(f"These columns appear more than once: {', '.join(duplicated)}.")
    if "" in names:
        problems.append(f"Column {names.index('') + 1} has no name in the header.")
    for name in names:
        if name and name not in CONTACT_COLUMNS and (problem := attribute_name_problem(name)):
            problems.append(f"Column '{name}': {problem}")
    if problems:
        raise ValidationError(problems)
    return names


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def validation_reason(error: ValidationError) -> str:
    """One line for a rejected row: each problem, prefixed by its column."""
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    parts = []
    for field, messages in error.message_dict.items():
        for message in messages:
            parts.append(message if field == NON_FIELD_ERRORS else f"{field}: {message}")
    return " ".join(parts)


class ContactResource(resources.ModelResource):
    class Meta:
        model = Contact
        fields = (*CONTACT_COLUMNS, "attributes")
        skip_unchanged = True
        report_skipped = True
        clean_model_instances = True
        use_transactions = True

    def __init__(
        self,
        *,
        list_name: str = "",
        line_numbers: list[int] | None = None,
        row_problems: dict[int, str] | None = None,
        on_row: Callable[[], None] | None = None,
    ):
        """`line_numbers[i - 1]` is the file line of data row i (without it, the line is i + 1: one header line
        and one line per row); `row_problems` maps data rows to a reason to refuse them (a malformed line);
        `on_row` is called after each row (the command's progress bar)."""
        super().__init__()
        self.list_name = (list_name or "").strip()
        self.line_numbers = line_numbers
        self.row_problems = row_problems or {}
        self.on_row = on_row
        self.contact_list: ContactList | None = None
        self._seen: dict[tuple[str, str], int] = {}
        self._row: dict[str, Any] = {}

    def line(self, row_number: int) -> int:
        if self.line_numbers and 0 < row_number <= len(self.line_numbers):
            return self.line_numbers[row_number - 1]
        return row_number + 1

    def get_user_visible_fields(self):
        # The columns the import page names: custom attributes come from any other column (the page says so), and
        # a column called "attributes" is refused.
        return [field for field in super().get_user_visible_fields() if field.column_name != "attributes"]

    # --- The import workflow's hooks ---------------------------------------------------------------------------

    def before_import(self, dataset, **kwargs):
        dataset.headers = contact_import_headers(list(dataset.headers or []))
        if self.list_name:
            self.contact_list, _created = ContactList.objects.get_or_create(name=self.list_name)
        self._seen = {}

    def before_import_row(self, row, **kwargs):
        """Check the row's fields and that it is not a second row for the same contact."""
        number = kwargs["row_number"]
        if number in self.row_problems:
            raise ValidationError(self.row_problems[number])
        fields = {name: row[name] for name in CONTACT_COLUMNS if name in row and not _blank(row[name])}
        attributes = {
            name: str(value).strip()
            for name, value in row.items()
            if name not in CONTACT_COLUMNS and name and not _blank(value)
        }
        cleaned = contact_fields_clean(fields)
        if not cleaned.get("phone") and not cleaned.get("email"):
            raise ValidationError("The row has neither a phone number nor an email address.")
        for key in ("phone", "email"):
            if cleaned.get(key) and (key, cleaned[key]) in self._seen:
                first = self._seen[(key, cleaned[key])]
                raise ValidationError({key: f"Line {first} already has {cleaned[key]}: a contact can appear once."})
        self._row = {"fields": cleaned, "attributes": attributes}

    def get_instance(self, instance_loader, row):
        """The contact with the row's phone, else the one with its email; refuse a row that names two."""
        cleaned = self._row["fields"]
        by_phone = Contact.objects.filter(phone=cleaned["phone"]).first() if cleaned.get("phone") else None
        by_email = Contact.objects.filter(email=cleaned["email"]).first() if cleaned.get("email") else None
        if by_phone and by_email and by_phone.pk != by_email.pk:
            raise ValidationError(
                f"The phone number belongs to contact #{by_phone.pk} ({by_phone}) and the email address to "
                f"contact #{by_email.pk} ({by_email}): fix the row, or merge the two contacts first."
            )
        return by_phone or by_email

    def import_instance(self, instance, row, **kwargs):
        for name, value in self._row["fields"].items():
            setattr(instance, name, value)
        if self._row["attributes"]:
            instance.attributes = {**(instance.attributes or {}), **self._row["attributes"]}

    def skip_row(self, instance, original, row, import_validation_errors=None):
        if import_validation_errors or instance.pk is None:
            return False
        unchanged = all(getattr(instance, name) == getattr(original, name) for name in _COMPARED)
        listed = self.contact_list is None or instance.lists.filter(pk=self.contact_list.pk).exists()
        return unchanged and listed

    def save_m2m(self, instance, row, **kwargs):
        if self.contact_list is not None and (self._is_using_transactions(kwargs) or not self._is_dry_run(kwargs)):
            instance.lists.add(self.contact_list)

    def import_row(self, row, instance_loader, **kwargs):
        self._row = {"fields": {}, "attributes": {}}
        row_result = super().import_row(row, instance_loader, **kwargs)
        if row_result.import_type in (
            RowResult.IMPORT_TYPE_NEW,
            RowResult.IMPORT_TYPE_UPDATE,
            RowResult.IMPORT_TYPE_SKIP,
        ):
            for key in ("phone", "email"):
                if value := self._row["fields"].get(key):
                    self._seen[(key, value)] = self.line(kwargs["row_number"])
        if self.on_row:
            self.on_row()
        return row_result

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        # Report lines of the file, which is what a person fixing it looks for, each with the cells it had: the
        # package's own values follow the model's fields and leave out the columns that become attributes.
        headers = list(dataset.headers or [])
        for invalid in result.invalid_rows:
            cells = dataset[invalid.number - 1] if 0 < invalid.number <= len(dataset) else ()
            invalid.cells = [(name, value) for name, value in zip(headers, cells, strict=False) if not _blank(value)]
            invalid.number = self.line(invalid.number)
        for error_row in result.error_rows:
            error_row.number = self.line(error_row.number)
