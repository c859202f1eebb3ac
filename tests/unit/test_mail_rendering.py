"""M-2: the completion mail in the seed's words, as UTF-8 MIME with a stable Message-ID;
and the Maildir writer of the embedded default."""

from __future__ import annotations

import mailbox
from datetime import date, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from uuid import UUID, uuid4

from lifecycle.adapters.mailers import MaildirMailer
from lifecycle.aggregates.contract import Registration, Site
from lifecycle.aggregates.shipments import OptionUnit
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.periods import SupportPeriod
from lifecycle.mail.rendering import MailComposer, Vendor

VENDOR = Vendor(
    name="テスト電機株式会社",
    mail_from="support@vendor.example",
    call_center_name="コールセンター",
    call_center_phone="0120-123-456",
    call_center_mail="callcenter@vendor.example",
    call_center_hours="月～金 9:00～17:00（土日祝日・12月29日～1月3日は除く）",
    contracts_desk_name="サービス業務管理部",
    contracts_desk_mail="contracts@vendor.example",
    service_desk_names={"デリバリースタンダード": "デリバリーサービス"},
)
SITE = Site(uuid4(), "大阪支店", "佐藤", "06-1234-5678", "s@x.jp", postal_code="5300001", prefecture="大阪府",
            city="大阪市北区", street="梅田1-1")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
NOTIFICATION = UUID("9b2f6c1e-1111-4a2b-8c3d-000000000001")


def registration(**overrides: object) -> Registration:
    values: dict = dict(
        serial="A1B2C3D4E5F6G7H8", site_id=SITE.site_id, ticket_id="12345678", code_no="12345-01",
        model="AT-x510-28GTX", service="デリバリースタンダード", term_years=1,
        period=SupportPeriod(date(2026, 12, 1), date(2027, 12, 31)), registered_on=date(2026, 11, 20),
    )
    return Registration(**{**values, **overrides})


def render(reg: Registration) -> object:
    return MailComposer(VENDOR).service_in(
        NOTIFICATION, ["a@x.jp", "b@x.jp"], NOW, contract_number="SU00012345", user_name="山田 太郎",
        registration=reg, site=SITE,
    )


def test_M2_completion_mail_has_the_seeds_product_line_contacts_and_hours() -> None:
    mail = render(registration())
    message = message_from_bytes(mail.data, policy=default)
    body = message.get_content().replace("\r\n", "\n")  # canonical MIME text has CRLF lines
    assert "契約番号：SU00012345/チケットID:12345678/ AT-x510-28GTX デリバリースタンダード1年保守 /\n" \
           "（A1B2C3D4E5F6G7H8) / 2026/12/01 ～ 2027/12/31" in body
    assert "デリバリーサービス 連絡窓口\n□テスト電機株式会社\nコールセンター\n電話 0120-123-456\n" \
           "Mail：callcenter@vendor.example\n月～金 9:00～17:00（土日祝日・12月29日～1月3日は除く）" in body
    assert "□サービス業務管理部\ncontracts@vendor.example" in body
    assert "設置場所：大阪支店 〒530-0001 大阪府大阪市北区梅田1-1" in body
    assert body.startswith("山田 太郎 様\n")
    assert message["Subject"] == "【テスト電機株式会社】サポートサービス登録完了のご連絡（チケットID:12345678）"
    assert message["From"].addresses[0].display_name == "テスト電機株式会社"
    assert message["To"] == "a@x.jp, b@x.jp"
    assert message["Date"] == "Tue, 24 Nov 2026 10:00:00 +0900"
    assert message.get_content_type() == "text/plain" and message.get_content_charset() == "utf-8"
    assert mail.data.isascii()  # 7-bit on the wire: base64 body, RFC 2047 headers


def test_M4_message_id_is_the_notifications_and_rendering_is_repeatable() -> None:
    first, second = render(registration()), render(registration())
    assert first.message_id == f"<{NOTIFICATION}@vendor.example>"
    assert first.data == second.data


def test_B3_bundle_mail_names_the_ticket_model_and_the_options() -> None:
    body = message_from_bytes(render(registration(
        ticket_id=None, ticket_model="AT-x510-Z5", options=(OptionUnit("OPT1", "12345-02", "AT-PWR250"),),
    )).data, policy=default).get_content().replace("\r\n", "\n")
    assert "チケットID：なし（保守バンドル製品）" in body
    assert "/チケットID:-/ AT-x510-28GTX AT-x510-Z5 /" in body
    assert "オプション品：AT-PWR250（OPT1）" in body


def test_M4_maildir_delivers_a_notification_once_even_when_sent_again(tmp_path: Path) -> None:
    mailer = MaildirMailer(tmp_path / "mail")
    mail = render(registration())
    assert mailer.send(mail) == ("a@x.jp", "b@x.jp")
    assert mailer.send(mail) == ("a@x.jp", "b@x.jp")
    box = mailbox.Maildir(tmp_path / "mail", create=False)
    [message] = list(box)
    assert message["Message-ID"] == mail.message_id
    key = next(iter(box.keys()))
    read = box[key]  # a mail client reads it: it moves to cur/ with flags
    read.set_subdir("cur")
    read.add_flag("S")
    box[key] = read
    assert [p.name.endswith(":2,S") for p in (tmp_path / "mail" / "cur").iterdir()] == [True]
    mailer.send(mail)
    assert len(list(mailbox.Maildir(tmp_path / "mail", create=False))) == 1
