"""`manage.py import_prices FILE`: the price list from CSV, all or nothing, each bad row named by its line."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from guard.models import Price

pytestmark = pytest.mark.django_db


def write(tmp_path, text: str):
    path = tmp_path / "prices.csv"
    path.write_text(text)
    return str(path)


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_prices", *args, stdout=out)
    return out.getvalue()


def test_a_good_file_creates_then_updates_and_leaves_the_rest(tmp_path):
    first = write(tmp_path, "channel,country,price,currency\nsms,GB,0.04,USD\nsms,us,0.0079,usd\nemail,,0.001,USD\n")
    assert "3 created, 0 updated, 0 unchanged" in run(first)
    assert Price.objects.get(channel="sms", country="US").price == Decimal("0.0079")
    second = write(tmp_path, "Channel,Country,Price,Currency\nsms,GB,0.045,USD\nsms,US,0.0079,USD\n")
    assert "0 created, 1 updated, 1 unchanged" in run(second)
    assert Price.objects.get(channel="sms", country="GB").price == Decimal("0.045")
    assert Price.objects.count() == 3


def test_any_bad_row_is_named_by_line_and_nothing_is_saved(tmp_path, capsys):
    path = write(
        tmp_path,
        "channel,country,price,currency\n"
        "sms,GB,0.04,USD\n"
        "fax,GB,0.04,USD\n"
        "sms,XX,0.04,USD\n"
        "sms,FR,0,04,USD\n"
        "sms,DE,abc,USD\n"
        "email,GB,0.001,USD\n"
        "sms,GB,0.05,USD\n"
        "sms,ES,0.04,dollars\n"
        "sms,IT,-1,USD\n"
        "sms,PT,1_0,USD\n"
        "sms,NL,NaN,USD\n",
    )
    from io import StringIO

    out = StringIO()
    with pytest.raises(CommandError, match="10 row\\(s\\) rejected, nothing saved"):
        call_command("import_prices", path, stdout=out)
    report = out.getvalue()
    for expected in (
        "Line 3: channel 'fax'",
        "Line 4: country 'XX'",
        "Line 6: price 'abc' is not a number",
        "Line 7: email has no destination country",
        "Line 8: sms GB is already on line 2",
        "Line 9: currency 'DOLLARS'",
        "Line 10: price '-1' is not a number",
        "Line 11: price '1_0' is not a number",
        "Line 12: price 'NaN' is not a number",
    ):
        assert expected in report
    assert "Line 5: 5 fields where 4 were expected: write prices with a dot" in report
    assert Price.objects.count() == 0


def test_a_dry_run_counts_and_saves_nothing(tmp_path):
    path = write(tmp_path, "channel,country,price,currency\nsms,GB,0.04,USD\n")
    assert "Dry run, nothing saved. Imported" in run(path, "--dry-run")
    assert "1 created" in run(path, "--dry-run")
    assert Price.objects.count() == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("channel,price\nsms,0.04\n", "missing: country, currency"),
        ("", "missing: channel, country, price, currency"),
    ],
)
def test_a_file_that_is_not_a_price_list_is_one_readable_error(tmp_path, text, message):
    with pytest.raises(CommandError, match=message):
        run(write(tmp_path, text))


def test_a_missing_file_is_one_readable_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read .*nowhere.csv: No such file"):
        run(str(tmp_path / "nowhere.csv"))


def test_the_admin_lists_prices_for_those_allowed_and_refuses_other_staff(admin_client, client, django_user_model):
    Price.objects.create(channel="sms", country="GB", price=Decimal("0.04"), currency="USD")
    Price.objects.create(channel="email", country="", price=Decimal("0.001"), currency="USD")
    page = admin_client.get("/admin/guard/price/").content.decode()
    assert "any country" in page and "0.040000" in page
    staff = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/guard/price/").status_code == 403


def test_a_file_in_another_encoding_or_an_unknown_encoding_is_one_readable_error(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("channel,country,price,currency\nsms,GB,0.04,USD\n".encode("utf-16"))
    with pytest.raises(CommandError, match="cannot be imported: .*is --encoding right"):
        run(str(path))
    assert "1 created" in run(str(path), "--encoding", "utf-16")
    with pytest.raises(CommandError, match="Unknown --encoding 'nope'"):
        run(str(path), "--encoding", "nope")
