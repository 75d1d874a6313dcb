"""The clinic profile: its facts filled into wording, and its own calendar."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from knowledge.clinic import load_clinic_profile


def test_today_is_the_clinics_date_not_the_servers() -> None:
    clinic = load_clinic_profile()
    east, west = replace(clinic, timezone="Pacific/Kiritimati"), replace(clinic, timezone="Pacific/Pago_Pago")
    utc = datetime.now(UTC).date()

    # UTC+14 and UTC-11 are a day apart or more, whatever the hour: one is ahead of UTC's date or the other
    # behind it.
    assert (east.today() - west.today()).days >= 1
    assert east.today() >= utc >= west.today()
