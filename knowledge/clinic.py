"""The clinic profile: the facts about the clinic that replies quote (phone, hours, emergency number)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

DEFAULT_PROFILE = Path(__file__).with_name("clinic.yml")


@dataclass(frozen=True)
class ClinicProfile:
    name: str
    phone: str
    hours: str
    emergency_number: str
    booking_url: str
    email: str
    timezone: str
    on_call_phone: str

    def today(self) -> date:
        """Today in the clinic's time zone: treatment days are counted the way the clinic counts them."""
        return datetime.now(ZoneInfo(self.timezone)).date()

    def fill(self, template: str) -> str:
        """Replace `{clinic_name}`, `{clinic_phone}`, `{emergency_number}` ... in a reply template."""
        return template.format(
            clinic_name=self.name,
            clinic_phone=self.phone,
            clinic_hours=self.hours,
            emergency_number=self.emergency_number,
            booking_url=self.booking_url,
            clinic_email=self.email,
        )


@lru_cache(maxsize=4)
def load_clinic_profile(path: Path | None = None) -> ClinicProfile:
    """Read the clinic profile YAML (the bundled demo profile by default)."""
    data = yaml.safe_load((path or DEFAULT_PROFILE).read_text(encoding="utf-8"))
    return ClinicProfile(**data)
