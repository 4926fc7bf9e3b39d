from datetime import timedelta

from django.conf import settings
from django.db import models


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    WHATSAPP = "whatsapp", "WhatsApp"
    MESSENGER = "messenger", "Messenger"


class MessageTemplate(models.Model):
    """Reusable content rendered with Django's template language from a plain dict context.

    Every variable the content uses must be declared in `variables` (name -> default, null for "required");
    campaigns.services.templates validates that on save and fills defaults at render. Translations hold the
    same content in other languages; this row is the version in `language`, used when no translation fits.
    """

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    language = models.CharField(
        max_length=15, default="en", help_text="Language of this version, used when no translation fits."
    )
    subject = models.CharField(max_length=255, blank=True, help_text="Email only.")
    body = models.TextField(
        blank=True,
        help_text="SMS or WhatsApp text; for an email, the text part (derived from the HTML when left empty).",
    )
    html_body = models.TextField(blank=True, help_text="Email only: the HTML part.")
    variables = models.JSONField(
        default=dict,
        blank=True,
        help_text='Variables the template may use, with their defaults: {"first_name": null, "shop": "Tidings"}. '
        "null means required: a message missing it fails instead of being sent.",
    )
    sample_context = models.JSONField(
        default=dict, blank=True, help_text='Sample values for the preview: {"first_name": "Ada"}.'
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()})"


class MessageTemplateTranslation(models.Model):
    """The content of a template in another language; the template's channel and variables apply."""

    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(max_length=15, help_text="Language code, like 'fr' or 'pt-br'.")
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["language"]
        constraints = [
            models.UniqueConstraint(fields=["template", "language"], name="template_translation_unique_language")
        ]

    def __str__(self) -> str:
        return f"{self.template.name} [{self.language}]"


# The message priorities (deliveries.models.Priority), repeated here because deliveries imports this module.
PRIORITY_CHOICES = [("high", "High"), ("default", "Default"), ("low", "Low")]


class Campaign(models.Model):
    """A template sent to an audience on a schedule, with a lifecycle: see docs/campaigns.md.

    Every status change goes through campaigns.services.campaign_lifecycle (launch, pause, resume, cancel) and the
    scheduler tick; the admin and the API only call those. A recurring campaign (`recurrence` set) sends nothing
    itself: each occurrence of its cron schedule becomes a child campaign (`parent`, `occurrence_at`).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    class Schedule(models.TextChoices):
        NOW = "now", "As soon as launched"
        AT = "at", "At a given time"
        LOCAL_TIME = "local_time", "At a local time in each recipient's time zone"

    name = models.CharField(max_length=200)
    template = models.ForeignKey(
        MessageTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns"
    )
    contact_list = models.ForeignKey(
        "ContactList",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        help_text="Send to this list (or a segment).",
    )
    segment = models.ForeignKey(
        "Segment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        help_text="Send to the contacts this segment selects at launch (or a list).",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    schedule = models.CharField(max_length=20, choices=Schedule.choices, default=Schedule.NOW)
    send_at = models.DateTimeField(null=True, blank=True, help_text="For 'at a given time'.")
    local_time = models.TimeField(
        null=True, blank=True, help_text="For 'at a local time': the time of day in each recipient's time zone."
    )
    local_date = models.DateField(
        null=True,
        blank=True,
        help_text="For 'at a local time': the day; empty means the next time that time of day comes round.",
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="IANA name. Used for recipients without a time zone, for quiet hours and for the recurrence; "
        "empty means the server's TIME_ZONE.",
    )
    priority = models.CharField(max_length=10, choices=PRIORITY_CHOICES, default="default")
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many messages a minute for this campaign; empty: no limit."
    )
    quiet_hours_start = models.TimeField(
        null=True, blank=True, help_text="No message starts between this local time and the end (e.g. 21:00)."
    )
    quiet_hours_end = models.TimeField(null=True, blank=True, help_text="End of the quiet hours (e.g. 08:00).")
    recurrence = models.CharField(
        max_length=100,
        blank=True,
        help_text="Cron expression in the campaign's time zone, like '0 9 * * MON' (every Monday 09:00). "
        "Each occurrence sends to the audience as it is then.",
    )
    next_run_at = models.DateTimeField(null=True, blank=True, help_text="Next occurrence of a recurring campaign.")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="occurrences")
    occurrence_at = models.DateTimeField(null=True, blank=True, help_text="The occurrence this run is for.")

    # Fan-out bookkeeping: the audience is expanded in chunks of contacts ordered by id; the cursor is the last
    # contact expanded, so an interrupted or paused fan-out carries on where it stopped.
    targeted = models.PositiveIntegerField(default=0, help_text="Messages created for the audience so far.")
    excluded = models.PositiveIntegerField(
        default=0, help_text="Audience members left out: no consent for the channel, or no address for it."
    )
    fanout_cursor = models.BigIntegerField(default=0)
    fanout_done = models.BooleanField(default=False)
    fanout_state = models.JSONField(default=dict, blank=True)
    fanout_heartbeat = models.DateTimeField(null=True, blank=True)

    launched_at = models.DateTimeField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True, help_text="When the first message is due.")
    paused_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    summary_sent_at = models.DateTimeField(null=True, blank=True, help_text="When the owner's summary email went.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("launch_campaign", "Can launch campaigns"),
            ("pause_campaign", "Can pause and resume campaigns"),
            ("cancel_campaign", "Can cancel campaigns"),
        ]
        constraints = [
            # The database's guarantee that an occurrence of a recurring campaign is fired once.
            models.UniqueConstraint(fields=["parent", "occurrence_at"], name="campaign_unique_occurrence"),
        ]

    def __str__(self) -> str:
        return self.name


def _dependency_conditions():
    # deliveries.models imports this module, so its choices are looked up when first needed, not at import.
    from deliveries.models import DependencyCondition

    return DependencyCondition.choices


class CampaignStep(models.Model):
    """A follow-up of a multi-step campaign (drip): sent to each contact after their previous step's message
    meets `condition`, as a message depending on that one (deliveries.services.dependencies).

    The campaign's own template is step 0; steps are numbered 1, 2, ... by `position`.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(help_text="1 for the first follow-up, 2 for the next, ...")
    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="campaign_steps")
    condition = models.CharField(
        max_length=20,
        choices=_dependency_conditions,
        default="delivered",
        help_text="What the previous step's message must do first. Not opened / not clicked need an email step.",
    )
    delay = models.DurationField(
        default=timedelta(0), help_text="How long after the condition is met to send (e.g. 2 days: '2 00:00:00')."
    )
    window = models.DurationField(
        null=True,
        blank=True,
        help_text="For not opened / not clicked: how long after the previous message was sent to wait for an "
        "open or click (24 hours when empty).",
    )

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="campaign_step_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} — step {self.position}"


class Batch(models.Model):
    """One bulk send: a `POST /api/v1/messages/batch/` request or a `send_bulk` run over a CSV file.

    A `send_bulk` run is found again by its key (the file's content hash unless given), so running the same
    file again resumes it instead of sending twice: each row's message carries the dedupe key `<key>:<line>`.
    """

    class Kind(models.TextChoices):
        API = "api", "API batch"
        CSV = "csv", "send_bulk (CSV)"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    file_name = models.CharField(max_length=500, blank=True)
    file_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the CSV file.")
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    api_key = models.ForeignKey("deliveries.ApiKey", null=True, blank=True, on_delete=models.SET_NULL)
    # An API batch's answer as sent, so a repeat of the request (same Idempotency-Key) can get it again; kept
    # only for requests that gave a key.
    response = models.JSONField(default=dict, blank=True)
    idempotency_key = models.OneToOneField(
        "deliveries.IdempotencyKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="batch"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}" + (f" ({self.key})" if self.key and self.kind == "csv" else "")


class ContactList(models.Model):
    """A named set of contacts, filled by hand or by imports (`import_contacts FILE --list NAME`)."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    """Someone Tidings may message. Phone and email are normalised (E.164, lower case) and each unique, so an
    import can find the contact again by either; a blank field means "not known" and never matches."""

    name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, like +14155550100.")
    email = models.CharField(max_length=320, blank=True)
    language = models.CharField(
        max_length=15, blank=True, help_text="Picks a template's translation; empty means the template's own language."
    )
    time_zone = models.CharField(max_length=64, blank=True, help_text="IANA name, like Europe/Paris.")
    attributes = models.JSONField(
        default=dict, blank=True, help_text='Custom attributes, usable in templates: {"plan": "gold"}.'
    )
    sms_consent = models.BooleanField("SMS consent", default=False)
    whatsapp_consent = models.BooleanField("WhatsApp consent", default=False)
    email_consent = models.BooleanField("email consent", default=False)
    lists = models.ManyToManyField(ContactList, related_name="contacts", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["phone"],
                condition=~models.Q(phone=""),
                name="contact_unique_phone",
                violation_error_message="Another contact has this phone number.",
            ),
            models.UniqueConstraint(
                fields=["email"],
                condition=~models.Q(email=""),
                name="contact_unique_email",
                violation_error_message="Another contact has this email address.",
            ),
            models.CheckConstraint(
                condition=~models.Q(phone="", email=""),
                name="contact_has_phone_or_email",
                violation_error_message="A contact needs a phone number or an email address.",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.phone or self.email

    def has_consent(self, channel: str) -> bool:
        return bool(getattr(self, f"{channel}_consent", False))


class Segment(models.Model):
    """Contacts chosen by attribute filters, evaluated when used (campaigns.selectors.segment_contacts).

    `filters` is a list of {"field": ..., "op": ..., "value": ...}; see campaigns.segment_filters for the fields
    and operators. `match` says whether a contact must pass all of them or any.
    """

    class Match(models.TextChoices):
        ALL = "all", "All filters"
        ANY = "any", "Any filter"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    contact_list = models.ForeignKey(
        ContactList,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="segments",
        help_text="Only contacts of this list; empty means every contact.",
    )
    match = models.CharField(max_length=3, choices=Match.choices, default=Match.ALL)
    filters = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
