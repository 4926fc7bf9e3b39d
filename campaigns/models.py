from datetime import timedelta

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from content.models import MessageTemplate
from deliveries.models import DependencyCondition, Priority


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
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.DEFAULT)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many messages a minute for this campaign; empty: no limit."
    )
    quiet_hours_start = models.TimeField(
        null=True, blank=True, help_text="No message starts between this local time and the end (e.g. 21:00)."
    )
    quiet_hours_end = models.TimeField(null=True, blank=True, help_text="End of the quiet hours (e.g. 08:00).")
    spend_cap = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="The most this campaign may cost, in the price list's currency; empty: no cap. A campaign whose "
        "estimate passes it cannot be launched.",
    )
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
        choices=DependencyCondition.choices,
        default=DependencyCondition.DELIVERED,
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
