"""Domain refusals. Each carries the SPEC's stable code, an HTTP-neutral kind and the
seed's Japanese wording where it has one (SPEC section 4)."""

from __future__ import annotations

from enum import Enum
from typing import Any


class Refusal(Enum):
    """What kind of refusal an error is; the API maps each to one status."""

    NOT_FOUND = "not_found"  # an unknown resource named in the path
    CONFLICT = "conflict"  # conflicts with recorded state
    INVALID = "invalid"  # input that breaks a rule
    UNAVAILABLE = "unavailable"  # not now: try again (a read model still catching up)
    TOO_LARGE = "too_large"  # the input is over a size limit (HTTP 413)
    UNAUTHENTICATED = "unauthenticated"  # no valid credentials (401)
    FORBIDDEN = "forbidden"  # valid credentials without the right (403)
    RATE_LIMITED = "rate_limited"  # too many attempts (429)


class DomainError(Exception):
    code: str = "DOMAIN_ERROR"
    kind: Refusal = Refusal.INVALID
    title: str = "The request breaks a rule"
    message_ja: str = "入力内容に誤りがあります。"

    def __init__(self, detail: str, *, kind: Refusal | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if kind is not None:
            self.kind = kind
        self.extra = extra

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "kind": self.kind.value,
            "title": self.title,
            "detail": self.detail,
            "message_ja": self.message_ja,
            "extra": self.extra,
        }


class RecordedRefusal(DomainError):
    """A refusal given earlier to the same idempotent command, answered again."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordedRefusal:
        error = cls(data["detail"], kind=Refusal(data["kind"]), **data.get("extra", {}))
        error.code = data["code"]
        error.title = data["title"]
        error.message_ja = data["message_ja"]
        return error


# --- seed errors (E1, E2, E4, E5) -------------------------------------------------------


class ProvisionalUserNotFound(DomainError):
    code = "PROVISIONAL_USER_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "No provisional account for this token"
    message_ja = "仮ユーザー情報が登録されていません。"


class AddressUndefined(DomainError):
    code = "ADDRESS_UNDEFINED"
    title = "Undefined address"
    message_ja = "未定義の住所が入力されました。"


class NotInShipmentHistory(DomainError):
    code = "NOT_IN_SHIPMENT_HISTORY"
    title = "Ticket not in the shipment history"
    message_ja = "出荷履歴にありません。"


class SerialNotFound(DomainError):
    code = "SERIAL_NOT_FOUND"
    title = "Unknown serial number"
    message_ja = "該当のシリアルは存在しません。"


# --- accounts -------------------------------------------------------------------------


class TermsNotAccepted(DomainError):
    code = "TERMS_NOT_ACCEPTED"
    title = "The terms of use must be accepted"
    message_ja = "利用規約への同意が必要です。"


class WeakPassword(DomainError):
    code = "WEAK_PASSWORD"
    title = "Password too weak"
    message_ja = "パスワードは英字と数字を含む8文字以上で入力してください。"


class EmailAlreadyRegistered(DomainError):
    code = "EMAIL_ALREADY_REGISTERED"
    kind = Refusal.CONFLICT
    title = "E-mail address already registered"
    message_ja = "このメールアドレスは既に登録されています。"


class AccountNotFound(DomainError):
    code = "ACCOUNT_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "Unknown account"
    message_ja = "ユーザー情報が見つかりません。"


class AccountNotActive(DomainError):
    code = "ACCOUNT_NOT_ACTIVE"
    kind = Refusal.CONFLICT
    title = "The account has not been confirmed yet"
    message_ja = "本登録が完了していません。確認メールのURLにアクセスしてください。"


class EmailChangeNotFound(DomainError):
    """A-3: the token names no e-mail change waiting (unknown, expired or already used)."""

    code = "EMAIL_CHANGE_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "No e-mail change is waiting for this token"
    message_ja = "メールアドレス変更の受付情報が見つかりません。URLの有効期限（24時間）が切れたか、既に変更済みです。"


class PasswordResetNotFound(DomainError):
    """A-4: the reset link is unknown, expired or already used (single use)."""

    code = "PASSWORD_RESET_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "No password reset is waiting for this token"
    message_ja = "パスワード再設定の受付情報が見つかりません。URLの有効期限が切れたか、既に使用済みです。もう一度お手続きください。"


# --- companies, sites, contacts -------------------------------------------------------


class CompanyNotFound(DomainError):
    code = "COMPANY_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "Unknown installation company"
    message_ja = "設置先会社が見つかりません。"


class ContractNotFound(DomainError):
    code = "CONTRACT_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "Unknown contract number"
    message_ja = "契約番号が見つかりません。"


class SiteNotFound(DomainError):
    code = "SITE_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "Unknown installation site"
    message_ja = "設置先拠点が見つかりません。"


class FaultContactNotFound(DomainError):
    code = "FAULT_CONTACT_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "Unknown fault contact"
    message_ja = "障害時連絡先が見つかりません。"


class FaultContactRequired(DomainError):
    code = "FAULT_CONTACT_REQUIRED"
    kind = Refusal.CONFLICT
    title = "The site has no fault contact yet"
    message_ja = "障害時連絡先を登録してから製品を登録してください。"


class InvalidPostalCode(DomainError):
    code = "INVALID_POSTAL_CODE"
    title = "A postal code has 7 digits"
    message_ja = "郵便番号は7桁の数字で入力してください。"


class AddressMismatch(DomainError):
    code = "ADDRESS_MISMATCH"
    title = "The address does not match the postal code"
    message_ja = "郵便番号と住所が一致しません。"


class InvalidPhone(DomainError):
    code = "INVALID_PHONE"
    title = "Phone numbers are hyphen-separated digits"
    message_ja = "電話番号はハイフン区切りで入力してください。（例：03-1234-5678）"


# --- shipment history -----------------------------------------------------------------


class ShipmentAlreadyRecorded(DomainError):
    code = "SHIPMENT_ALREADY_RECORDED"
    kind = Refusal.CONFLICT
    title = "This serial is already in the shipment history"
    message_ja = "このシリアル番号は既に出荷履歴に登録されています。"


class TicketAlreadyRecorded(DomainError):
    code = "TICKET_ALREADY_RECORDED"
    kind = Refusal.CONFLICT
    title = "This ticket is already in the shipment history"
    message_ja = "このチケットIDは既に出荷履歴に登録されています。"


class InvalidSerial(DomainError):
    code = "INVALID_SERIAL"
    title = "No serial number in the input"
    message_ja = "シリアル番号を入力してください。"


class InvalidTicketTerm(DomainError):
    code = "INVALID_TICKET_TERM"
    title = "Unsupported support term"
    message_ja = "サポート期間（年数）が正しくありません。"


# --- registrations --------------------------------------------------------------------


class ProductCodeMismatch(DomainError):
    code = "PRODUCT_CODE_MISMATCH"
    title = "The ticket is for another product"
    message_ja = "このサポートチケットは対象製品が異なるため登録できません。"


class TicketKindMismatch(DomainError):
    code = "TICKET_KIND_MISMATCH"
    title = "Wrong kind of ticket for this registration"
    message_ja = "新規用と更新用のサポートチケットは相互に使用できません。"


class TicketNotEligible(DomainError):
    code = "TICKET_NOT_ELIGIBLE"
    title = "This ticket cannot be registered as a new support ticket"
    message_ja = "新規登録できるのはデリバリースタンダード1年または5年のサポートチケットのみです。"


class TicketAlreadyRegistered(DomainError):
    code = "TICKET_ALREADY_REGISTERED"
    kind = Refusal.CONFLICT
    title = "The ticket is already registered"
    message_ja = "このサポートチケットは既に登録されています。"


class UnitAlreadyRegistered(DomainError):
    code = "UNIT_ALREADY_REGISTERED"
    kind = Refusal.CONFLICT
    title = "The unit is already covered"
    message_ja = "このシリアル番号の製品は既に登録されています。"


class NotABundle(DomainError):
    code = "NOT_A_BUNDLE"
    title = "The serial is not a maintenance bundle unit"
    message_ja = "このシリアル番号は保守バンドル製品ではありません。"


class BundleOptionsMissing(DomainError):
    code = "BUNDLE_OPTIONS_MISSING"
    title = "Serials of standard options are missing"
    message_ja = "標準添付オプションのシリアル番号が入力されていません。"


class BundleOptionsInvalid(DomainError):
    code = "BUNDLE_OPTIONS_INVALID"
    title = "These serials are not options of this bundle"
    message_ja = "標準添付オプションのシリアル番号が正しくありません。"


class NotRegistered(DomainError):
    code = "NOT_REGISTERED"
    kind = Refusal.CONFLICT
    title = "The unit has no registration to renew"
    message_ja = "この製品はサポート登録されていません。"


class RenewalWindowClosed(DomainError):
    code = "RENEWAL_WINDOW_CLOSED"
    kind = Refusal.CONFLICT
    title = "Outside the renewal window"
    message_ja = "更新可能な期間ではありません。"


# --- idempotency ----------------------------------------------------------------------


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"
    title = "The Idempotency-Key was used for another request"
    message_ja = "同じIdempotency-Keyが異なるリクエストに使われています。"


class InvalidTicketId(DomainError):
    code = "INVALID_TICKET_ID"
    title = "A ticket ID has 8 digits"
    message_ja = "チケットIDは8桁の数字です。"


class ConcurrentUpdate(DomainError):
    code = "CONCURRENT_UPDATE"
    kind = Refusal.CONFLICT  # nothing was changed; the client may retry
    title = "Too many concurrent changes; try again"
    message_ja = "同時に更新が行われました。もう一度お試しください。"


# --- reads: lookups, the inquiry check, history, read models ---------------------------


class TicketNotRegistered(DomainError):
    code = "TICKET_NOT_REGISTERED"
    kind = Refusal.NOT_FOUND
    title = "No registration uses this ticket"
    message_ja = "このチケットIDで登録された製品はありません。"


class InquiryTargetMissing(DomainError):
    code = "INQUIRY_TARGET_MISSING"
    title = "Give a contract number or a serial, and the caller's e-mail, phone or company"
    message_ja = "契約番号またはシリアル番号と、問い合わせ者のメールアドレス・電話番号・会社名のいずれかを入力してください。"


class UnknownEventType(DomainError):
    code = "UNKNOWN_EVENT_TYPE"
    title = "No such event type"
    message_ja = "指定されたイベント種別は存在しません。"


class PositionBeyondLog(DomainError):
    """A read asked for a log position no command has reached (issue 11: answered at once)."""

    code = "POSITION_BEYOND_LOG"
    title = "min_position is beyond the head of the log"
    message_ja = "指定された位置（min_position）はまだ存在しません。"


class ReadModelBehind(DomainError):
    """A read asked for a log position its read model has not reached within the wait."""

    code = "READ_MODEL_BEHIND"
    kind = Refusal.UNAVAILABLE
    title = "The read model has not caught up yet; try again"
    message_ja = "最新の情報を反映中です。しばらくしてから再度お試しください。"


class StoreUnavailable(DomainError):
    """The event store does not answer (or not in time): nothing was changed. Never recorded
    as a command's answer: the API builds it from the store's own exception."""

    code = "STORE_UNAVAILABLE"
    kind = Refusal.UNAVAILABLE
    title = "The event store is unavailable; nothing was changed"
    message_ja = "ただいまデータベースに接続できないため処理できません。しばらくしてから再度お試しください。"


class BrokerUnavailable(DomainError):
    """The broker (Redis) that hands mails to the workers does not answer."""

    code = "BROKER_UNAVAILABLE"
    kind = Refusal.UNAVAILABLE
    title = "The mail broker is unavailable; try again later"
    message_ja = "ただいまメール送信の受付ができません。しばらくしてから再度お試しください。"


class UnknownProjection(DomainError):
    code = "UNKNOWN_PROJECTION"
    kind = Refusal.NOT_FOUND
    title = "No such projection"
    message_ja = "指定された集計は存在しません。"


class ReadModelStopped(DomainError):
    """A read model stopped at an event it cannot apply: waiting would never end."""

    code = "READ_MODEL_STOPPED"
    kind = Refusal.UNAVAILABLE
    title = "The read model stopped at an event it cannot apply"
    message_ja = "集計処理が停止しているため、最新の情報を表示できません。システム管理者にお問い合わせください。"


# --- notifications (operating the mails) ------------------------------------------------


class NotificationNotFound(DomainError):
    code = "NOTIFICATION_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "No such notification"
    message_ja = "該当する通知が見つかりません。"


class NotificationNotFailed(DomainError):
    code = "NOTIFICATION_NOT_FAILED"
    kind = Refusal.CONFLICT
    title = "Only a failed notification can be sent again"
    message_ja = "この通知は送信失敗の状態ではないため、再送できません。"

# --- bulk registration (K-1) ----------------------------------------------------------
# The file-level errors are raised by lifecycle.bulk.read_sheet: one of them refuses the
# whole upload before any row is read. The row-level ones are never raised by the reader:
# they name the problem of one row (SheetRow.problem) with the same code and message shape
# as every other refusal, so a row is reported exactly like a single registration.


class BulkError(DomainError):
    """A bulk-sheet refusal whose Japanese message names the column, limit or row concerned.

    `message_ja_template` is filled from the keyword arguments, which also travel as
    `extra` (problem+json extensions); the class's own `message_ja` is the general wording.
    """

    message_ja_template: str = ""

    def __init__(self, detail: str, *, kind: Refusal | None = None, **extra: Any) -> None:
        super().__init__(detail, kind=kind, **extra)
        if self.message_ja_template:
            self.message_ja = self.message_ja_template.format(**extra)


class BulkFileTooLarge(BulkError):
    code = "BULK_FILE_TOO_LARGE"
    kind = Refusal.TOO_LARGE  # HTTP 413
    title = "The uploaded file is over the size limit"
    message_ja = "ファイルサイズが上限を超えています。シートを分割してアップロードしてください。"
    message_ja_template = (
        "ファイルサイズが上限（{limit_mb} MB）を超えています。シートを分割してアップロードしてください。"
    )


class BulkUploadMalformed(BulkError):
    code = "BULK_UPLOAD_MALFORMED"
    title = "The upload is not one file in the field `file`"
    message_ja = (
        "アップロードの形式が正しくありません。一括登録シートのファイル1つだけを、項目名 file で送信してください。"
    )


class BulkNotXlsx(BulkError):
    code = "BULK_NOT_XLSX"
    title = "The file is not an Excel workbook (.xlsx)"
    message_ja = (
        "Excel形式（.xlsx）のファイルではありません。CSV形式やExcel 97-2003形式（.xls）は読み込めません。"
        "一括登録シートのテンプレートに記入し、.xlsx形式で保存してアップロードしてください。"
    )


class BulkFileEncrypted(BulkError):
    code = "BULK_FILE_ENCRYPTED"
    title = "The workbook is password-protected"
    message_ja = (
        "パスワードで保護されたファイルは読み込めません。パスワードを解除して保存し直してからアップロードしてください。"
    )


class BulkUnsafeFile(BulkError):
    code = "BULK_UNSAFE_FILE"
    title = "The file cannot be read safely"
    message_ja = (
        "安全に読み込めないファイルです。一括登録シートのテンプレートに記入し、Excelで保存し直してからアップロードしてください。"
    )


class BulkWrongHeaders(BulkError):
    code = "BULK_WRONG_HEADERS"
    title = "The sheet does not have the bulk-registration headers"
    message_ja = "一括登録シートの見出しが正しくありません。見出しはテンプレートのまま使用してください。"
    message_ja_template = (
        "一括登録シートの見出しが正しくありません。見出し（{expected_ja}）はテンプレートのまま使用してください。"
        "{missing_ja}"
    )


class BulkEmpty(BulkError):
    code = "BULK_EMPTY"
    title = "The sheet has no rows to register"
    message_ja = "登録する行がありません。見出しの下の行に記入してください。"


class BulkTooManyRows(BulkError):
    code = "BULK_TOO_MANY_ROWS"
    title = "The sheet has more rows than allowed"
    message_ja = "行数が上限を超えています。シートを分割してアップロードしてください。"
    message_ja_template = "行数が上限（{max_rows}行）を超えています。シートを分割してアップロードしてください。"


class BulkUnknownKind(BulkError):
    code = "BULK_UNKNOWN_KIND"
    title = "The kind is not new, bundle or renewal"
    message_ja = "「種別」は「新規」「バンドル」「更新」のいずれかを選択してください。"


class BulkFieldRequired(BulkError):
    code = "BULK_FIELD_REQUIRED"
    title = "A column this kind of row needs is empty"
    message_ja = "必須の項目が入力されていません。"
    message_ja_template = "「{field_ja}」が入力されていません。（{kind_ja}の行では必須です）"


class BulkFieldNotForKind(BulkError):
    code = "BULK_FIELD_NOT_FOR_KIND"
    title = "A column is filled that this kind of row does not use"
    message_ja = "この種別の行には入力しない項目が入力されています。種別が正しいかご確認ください。"
    message_ja_template = "{kind_ja}の行には「{field_ja}」を入力しないでください。{hint_ja}"


class TicketIdLeadingZerosLost(BulkError):
    code = "TICKET_ID_LEADING_ZEROS_LOST"
    title = "Excel stored the ticket ID as a number and dropped its leading zeros"
    message_ja = (
        "チケットIDが数値として保存され、先頭の0が失われています。"
        "セルの書式を「文字列」にして、8桁のチケットIDを入力し直してください。"
    )


class BulkValueConverted(BulkError):
    code = "BULK_VALUE_CONVERTED"
    title = "Excel converted the value to a number or date and lost what was typed"
    message_ja = (
        "Excelにより数値や日付に変換され、入力した内容が失われています。セルの書式を「文字列」にして入力し直してください。"
    )
    message_ja_template = (
        "「{field_ja}」がExcelにより数値や日付に変換され、入力した内容が失われています。"
        "セルの書式を「文字列」にして入力し直してください。"
    )


class BulkFormulaError(BulkError):
    code = "BULK_FORMULA_ERROR"
    title = "A cell holds a formula error"
    message_ja = "数式がエラーになっています。"
    message_ja_template = "「{field_ja}」の数式がエラー（{value}）になっています。値を直接入力してください。"


class BulkFieldTooLong(BulkError):
    code = "BULK_FIELD_TOO_LONG"
    title = "A cell is longer than allowed"
    message_ja = "入力された文字数が上限を超えています。"
    message_ja_template = "「{field_ja}」が長すぎます（{limit}文字まで）。"


class BulkControlCharacters(BulkError):
    code = "BULK_CONTROL_CHARACTERS"
    title = "A cell holds control characters"
    message_ja = "使用できない制御文字（改行・タブなど）が含まれています。"
    message_ja_template = "「{field_ja}」に使用できない制御文字（改行・タブなど）が含まれています。"


class BulkDuplicateRow(BulkError):
    code = "BULK_DUPLICATE_ROW"
    kind = Refusal.CONFLICT
    title = "The same row appears earlier in the sheet"
    message_ja = "同じ内容の行がシート内にあります。この行は登録されません。"
    message_ja_template = "同じ内容の行が{first_row}行目にあります。この行は登録されません。"


class BulkRowAlreadyRegistered(BulkError):
    """K-1: the same row (by its content, not the file) was registered by an earlier upload."""

    code = "BULK_ALREADY_REGISTERED"
    kind = Refusal.CONFLICT
    title = "An earlier upload registered this row"
    message_ja = "この行は以前のアップロードで登録済みです。二重には登録されません。"


class BulkRowValid(BulkError):
    """K-1 dry run: the row would be registered; nothing was."""

    code = "BULK_DRY_RUN"
    title = "Validated only: the row can be registered"
    message_ja = "検証のみ：この行は登録できます（まだ登録されていません）。"


class BulkSiteAmbiguous(BulkError):
    code = "BULK_SITE_AMBIGUOUS"
    title = "Several sites of the company have this name"
    message_ja = "同じ名前の設置先拠点が複数あります。「設置先拠点」には拠点IDを入力してください。"


class BulkJobNotFound(DomainError):
    code = "BULK_JOB_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "Unknown bulk registration job"
    message_ja = "一括登録の受付情報が見つかりません。"


# --- personal data (APPI: forget, disclose) ------------------------------------------------


class SubjectNotFound(DomainError):
    code = "DATA_SUBJECT_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "Unknown data subject"
    message_ja = "対象の個人情報が見つかりません。"


class AlreadyForgotten(DomainError):
    code = "PERSONAL_DATA_ALREADY_ERASED"
    kind = Refusal.CONFLICT
    title = "The subject's personal data is already erased"
    message_ja = "この個人情報は既に削除されています。"


class LiveCoverage(DomainError):
    """Forgetting an account whose companies still have coverage would leave live contracts
    without a registrant to mail: refused unless an admin forces it."""

    code = "ACCOUNT_HAS_LIVE_COVERAGE"
    kind = Refusal.CONFLICT
    title = "The account still has live coverage"
    message_ja = "有効なサポート契約があるため、ユーザー情報を削除できません。"


# --- access (API keys, sessions) --------------------------------------------------------


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    kind = Refusal.UNAUTHENTICATED
    title = "Credentials are missing, unknown, expired or revoked"
    message_ja = "認証が必要です。ログインし直すか、有効なAPIキーを指定してください。"


class Forbidden(DomainError):
    code = "FORBIDDEN"
    kind = Refusal.FORBIDDEN
    title = "The caller may not do this"
    message_ja = "この操作を行う権限がありません。"


class InvalidCredentials(DomainError):
    """A-1 login: the same answer for an unknown address and a wrong password."""

    code = "INVALID_CREDENTIALS"
    kind = Refusal.UNAUTHENTICATED
    title = "The e-mail address or the password is not correct"
    message_ja = "メールアドレスまたはパスワードが正しくありません。"


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    kind = Refusal.RATE_LIMITED
    title = "Too many attempts; try again later"
    message_ja = "試行回数が上限に達しました。しばらくしてから再度お試しください。"


class AccountIdRequired(DomainError):
    """GET /v1/companies by an API key: whose companies (a customer's session names its own)."""

    code = "ACCOUNT_ID_REQUIRED"
    title = "Name the account whose companies to list"
    message_ja = "アカウントIDを指定してください。"


class ApiKeyNameTaken(DomainError):
    code = "API_KEY_NAME_TAKEN"
    kind = Refusal.CONFLICT
    title = "An API key with this name exists"
    message_ja = "同じ名前のAPIキーが既に存在します。"


class ApiKeyNotFound(DomainError):
    code = "API_KEY_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "No such API key"
    message_ja = "該当するAPIキーが見つかりません。"


class InvalidKeyName(DomainError):
    code = "INVALID_KEY_NAME"
    title = "Not a valid API key name"
    message_ja = "APIキーの名前は英数字と「.」「_」「-」で100文字以内で指定してください。"


class UnknownRole(DomainError):
    code = "UNKNOWN_ROLE"
    title = "No such role"
    message_ja = "指定された権限（ロール）は存在しません。"


# --- input refused at the door (the HTTP layer raises these from schema checks) -------


class InvalidText(DomainError):
    """NUL, lone surrogates, line breaks, tabs and other control characters: no field is
    multi-line, and PostgreSQL cannot store NUL."""

    code = "INVALID_TEXT"
    title = "The text holds characters that are not accepted"
    message_ja = "使用できない文字（改行・タブ・制御文字など）が含まれています。"


class DateOutOfRange(DomainError):
    code = "DATE_OUT_OF_RANGE"
    title = "The date is outside the accepted range"
    message_ja = "日付は2000年1月1日から2100年12月31日までの範囲で入力してください。"


class ValidationFailed(DomainError):
    code = "VALIDATION_ERROR"
    title = "The request does not match the schema"
    message_ja = "入力内容に誤りがあります。"


class MalformedJson(DomainError):
    """Not JSON, not UTF-8, or nested deeper than the parser goes."""

    code = "MALFORMED_JSON"
    title = "The body is not valid JSON"
    message_ja = "リクエストの形式が正しくありません。"


class MalformedForm(DomainError):
    """A multipart/form-data (or urlencoded) body that cannot be parsed: no boundary, broken
    parts, a part without a name."""

    code = "MALFORMED_FORM"
    title = "The body is not valid form data"
    message_ja = "リクエストの形式が正しくありません。"


class BodyTooLarge(DomainError):
    code = "BODY_TOO_LARGE"
    kind = Refusal.TOO_LARGE
    title = "The request body is over the size limit"
    message_ja = "送信されたデータのサイズが上限を超えています。"


class MethodNotAllowed(DomainError):
    code = "METHOD_NOT_ALLOWED"
    title = "The method is not allowed on this path"
    message_ja = "この操作は許可されていません。"


class ResourceNotFound(DomainError):
    """A path whose id is malformed (not a UUID, say): it names no resource."""

    code = "RESOURCE_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "No such resource"
    message_ja = "該当する情報が見つかりません。"


class PathNotFound(DomainError):
    """A URL no route serves."""

    code = "NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "Not Found"
    message_ja = "該当する情報が見つかりません。"


class HttpRefusal(DomainError):
    """Any other refusal of the HTTP layer itself: its code is HTTP_<status>."""

    code = "HTTP_ERROR"  # each instance's is HTTP_<status>
    message_ja = "リクエストを処理できませんでした。"

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.code = f"HTTP_{status}"


class InternalError(DomainError):
    code = "INTERNAL_ERROR"
    title = "Unexpected error"
    message_ja = "システムエラーが発生しました。"


# --- the audit log and the event feed (issue 21) ---------------------------------------------


class TreeSizeBeyondLog(DomainError):
    """A proof asked for a tree larger than the audit tree has grown, or for indexes outside it."""

    code = "TREE_SIZE_BEYOND_LOG"
    title = "No such proof in the audit tree"
    message_ja = "指定された監査ログの範囲はまだ存在しません。"


class CheckpointNotFound(DomainError):
    code = "CHECKPOINT_NOT_FOUND"
    kind = Refusal.NOT_FOUND
    title = "No checkpoint of this tree size"
    message_ja = "指定されたチェックポイントはありません。"


class EventTypeUnknown(DomainError):
    """The event feed was asked for a type of event the log never holds."""

    code = "EVENT_TYPE_UNKNOWN"
    title = "Unknown event type"
    message_ja = "指定されたイベント種別はありません。"
