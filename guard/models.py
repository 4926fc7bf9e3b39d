"""What sending costs: a price per channel and destination country, the base of every estimate (docs/guard.md).

The guard sits between content and deliveries: it knows channels and texts, not messages, so that deliveries can ask
it what a message will cost when the message is created.
"""

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
