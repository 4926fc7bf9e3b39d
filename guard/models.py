"""What sending costs: a price per channel and destination country, the base of every estimate (docs/guard.md).

The guard sits between content and deliveries: it knows channels and texts, not messages, so that deliveries can ask
it what a message will cost when the message is created.
"""

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from content.models import Channel

# A price row whose country is blank is the channel's price for any destination without a row of its own: the
# unit price of email and Messenger, which have no destination country, or a catch-all for SMS.
ANY_COUNTRY = ""


class Price(models.Model):
    """The price of one SMS/MMS segment, or of one message on other channels, to one destination country."""

    channel = models.CharField(max_length=20, choices=Channel.choices)
    country = models.CharField(
        max_length=2,
        blank=True,
        validators=[RegexValidator(r"^[A-Z]{2}$", "An ISO 3166 alpha-2 code in capitals, such as GB.")],
        help_text="ISO 3166 alpha-2 code (GB, US…); blank: any country without a price of its own.",
    )
    price = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        validators=[MinValueValidator(0)],
        help_text="Per segment for SMS and MMS, per message on other channels.",
    )
    currency = models.CharField(
        max_length=3, validators=[RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code in capitals, such as USD.")]
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel", "country"]
        constraints = [models.UniqueConstraint(fields=["channel", "country"], name="guard_price_one_per_destination")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.country or 'any country'}: {self.price} {self.currency}"


class SpendCap(models.Model):
    """At most `amount` of spend per day or month, on everything, one channel or one API key (docs/guard.md).

    What would pass it is held at send time (deliveries.services.spend_caps). Only estimates in the cap's currency
    count: the price list's, since a cap cannot convert one currency into another.
    """

    class Scope(models.TextChoices):
        ALL = "all", "All messages"
        CHANNEL = "channel", "One channel"
        API_KEY = "api_key", "One API key"

    class Period(models.TextChoices):
        DAY = "day", "Day"
        MONTH = "month", "Month"

    class OnReach(models.TextChoices):
        HOLD = "hold", "Hold the messages until a person releases them or raises the cap"
        DEFER = "defer", "Defer the messages to the next day or month"

    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.ALL)
    # A channel's value (sms…) or an API key's id as text: the guard knows neither messages nor keys.
    scope_value = models.CharField(
        max_length=64, blank=True, help_text="The channel (sms, whatsapp, email, messenger) or the API key's id."
    )
    period = models.CharField(max_length=5, choices=Period.choices, default=Period.DAY)
    amount = models.DecimalField(max_digits=14, decimal_places=6, validators=[MinValueValidator(0)])
    currency = models.CharField(
        max_length=3,
        validators=[RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code in capitals, such as USD.")],
        help_text="The price list's currency: estimates in another currency are not counted.",
    )
    on_reach = models.CharField(max_length=5, choices=OnReach.choices, default=OnReach.HOLD)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "scope_value", "period"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_value", "period"], name="guard_spend_cap_one_per_scope")
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """'the daily sms cap', as a held message's reason names it."""
        period = "daily" if self.period == self.Period.DAY else "monthly"
        if self.scope == self.Scope.CHANNEL:
            return f"the {period} {self.scope_value} cap"
        if self.scope == self.Scope.API_KEY:
            return f"the {period} cap of API key {self.scope_value}"
        return f"the {period} cap"

    def clean(self) -> None:
        if self.scope == self.Scope.ALL and self.scope_value:
            raise ValidationError({"scope_value": "A cap on all messages has no value."})
        if self.scope == self.Scope.CHANNEL and self.scope_value not in Channel.values:
            raise ValidationError({"scope_value": f"One of {', '.join(Channel.values)}."})
        if self.scope == self.Scope.API_KEY and not self.scope_value.isdigit():
            raise ValidationError({"scope_value": "The API key's id (a number)."})
