"""Personal data (APPI art. 33–35): who its data subjects are, which fields are theirs, and
what a field shows once its subject has been forgotten.

Each personal field is stored sealed with a key of its data subject (docs/privacy.md);
forgetting a subject destroys that key, so every copy of the field, in every event and
snapshot, reads as `ERASED` from then on, while the log itself stays unchanged."""

from __future__ import annotations

from enum import Enum

# What an erased field reads as, everywhere: history, views, read models, exports of reads.
ERASED = "[erased]"
# What a sealed field reads as when it does not open with its subject's key (copied from
# another subject, field or event, or altered): never the value, never an error.
UNREADABLE = "[unreadable]"


class SubjectKind(str, Enum):
    """A data subject: the person a personal field is about."""

    ACCOUNT = "account"  # the registrant (ユーザー登録者), by account id
    SITE_PERSON = "site-person"  # a site's person in charge and its address, by site id
    FAULT_CONTACT = "fault-contact"  # a fault contact (障害時連絡先), by contact id


# The personal fields of each kind of subject; every other field is stored in clear
# (ids, serials, tickets, contract numbers, periods, postal code, prefecture and city).
PERSONAL_FIELDS: dict[SubjectKind, tuple[str, ...]] = {
    SubjectKind.ACCOUNT: ("email", "name", "phone"),
    SubjectKind.SITE_PERSON: ("person", "phone", "email", "street", "building"),
    SubjectKind.FAULT_CONTACT: ("company", "person", "phone", "mail1", "mail2", "street", "building"),
}


def is_erased(value: object) -> bool:
    return value == ERASED or value == UNREADABLE
