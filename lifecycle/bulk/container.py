"""Guards an uploaded workbook before openpyxl opens it (K-1).

An .xlsx is a ZIP of XML parts. Everything here looks at the bytes and the ZIP directory
only, so that a hostile or broken upload is refused with one clear error before any XML
parser or openpyxl sees it:

- more bytes than `max_bytes`                           -> BULK_FILE_TOO_LARGE (413)
- an OLE compound document with an EncryptionInfo stream -> BULK_FILE_ENCRYPTED
  (that is how Excel stores a password-protected workbook); any other OLE file is an
  old .xls                                              -> BULK_NOT_XLSX
- not a ZIP, not a readable ZIP, no [Content_Types].xml -> BULK_NOT_XLSX
- a ZIP bomb: too many members, a member or the total declaring more than the limits, a
  large member compressed more than MAX_COMPRESSION_RATIO:1, or a member that inflates
  to more than it declares (read with a cap, CRC checked) -> BULK_UNSAFE_FILE
- a DOCTYPE or ENTITY declaration in any member, in UTF-8 or UTF-16 (billion laughs and
  external entities need one)                           -> BULK_UNSAFE_FILE

Every member is read once, fully, through that capped reader; openpyxl afterwards reads
through zipfile too, which stops at the declared size, so the limits checked here are the
ones that bind. defusedxml, when installed, makes openpyxl refuse entities as well.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from io import BytesIO

from lifecycle.domain.errors import BulkFileEncrypted, BulkFileTooLarge, BulkNotXlsx, BulkUnsafeFile
from lifecycle.domain.limits import BULK_MAX_BYTES

try:  # openpyxl uses defusedxml when it is importable; the parts we parse ourselves do too
    from defusedxml.ElementTree import fromstring as _parse_xml
    from defusedxml.ElementTree import iterparse as _iterparse
except ImportError:  # the DOCTYPE scan below already refused every entity declaration
    from xml.etree.ElementTree import fromstring as _parse_xml
    from xml.etree.ElementTree import iterparse as _iterparse

MAX_BYTES = BULK_MAX_BYTES  # K-1
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024  # all members together, as declared and as read
MAX_MEMBERS = 2_000  # a real workbook has tens of parts
MAX_COMPRESSION_RATIO = 100
RATIO_CHECKED_FROM = 1024 * 1024  # small parts (styles, rels) may compress very well

OLE_SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")
ZIP_SIGNATURE = b"PK\x03\x04"
_ENCRYPTION_STREAMS = ("EncryptionInfo", "EncryptedPackage")  # names are UTF-16LE in OLE

_CHUNK = 64 * 1024
_OVERLAP = 64  # a pattern cut by a chunk boundary is still seen
_DECLARATIONS = re.compile(
    b"|".join(
        re.escape(word.encode(encoding))
        for word in ("<!DOCTYPE", "<!ENTITY")
        for encoding in ("utf-8", "utf-16-le", "utf-16-be")
    ),
    re.IGNORECASE,
)
_MERGE_CELL = re.compile(b"|".join(re.escape("mergeCell".encode(e)) for e in ("utf-8", "utf-16-le", "utf-16-be")))

_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PACKAGE_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_DOCUMENT = _NS_REL + "/officeDocument"


@dataclass(frozen=True)
class CheckedUpload:
    """What the guard learnt while reading every member: which ones hold merged cells."""

    members_with_merges: frozenset[str]


def check_upload(data: bytes, *, max_bytes: int = MAX_BYTES) -> CheckedUpload:
    """Refuse anything that is not a safe .xlsx; see the module docstring for each case."""
    if len(data) > max_bytes:
        raise BulkFileTooLarge(
            f"The file has {len(data)} bytes; at most {max_bytes} are accepted.",
            limit_bytes=max_bytes,
            limit_mb=_megabytes(max_bytes),
        )
    if data.startswith(OLE_SIGNATURE):
        if any(name.encode("utf-16-le") in data for name in _ENCRYPTION_STREAMS):
            raise BulkFileEncrypted("The file is a password-protected (encrypted) Office document.")
        raise BulkNotXlsx("The file is an OLE compound document (an Excel 97-2003 .xls or another old format).")
    if not data.startswith(ZIP_SIGNATURE):
        raise BulkNotXlsx(f"The file is not a ZIP-based .xlsx workbook (it starts with {data[:8]!r}).")
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise BulkNotXlsx(f"The file is not a readable .xlsx workbook: {error}.") from None
    with archive:
        members = archive.infolist()
        _check_declared_sizes(members)
        if "[Content_Types].xml" not in archive.namelist():
            raise BulkNotXlsx("The ZIP file has no [Content_Types].xml: it is not an Office document.")
        with_merges = frozenset(info.filename for info in members if _scan_member(archive, info))
    return CheckedUpload(members_with_merges=with_merges)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g}"


def _check_declared_sizes(members: list[zipfile.ZipInfo]) -> None:
    if len(members) > MAX_MEMBERS:
        raise BulkUnsafeFile(f"The workbook has {len(members)} parts; at most {MAX_MEMBERS} are accepted.")
    total = 0
    for info in members:
        if info.flag_bits & 0x1:
            raise BulkFileEncrypted(f"The ZIP member {info.filename} is encrypted.")
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_CHECKED_FROM and ratio > MAX_COMPRESSION_RATIO:
            raise BulkUnsafeFile(
                f"The part {info.filename} inflates {ratio:.0f}:1 (to {info.file_size} bytes); "
                f"at most {MAX_COMPRESSION_RATIO}:1 is accepted for large parts.",
                member=info.filename,
            )
    if total > MAX_UNCOMPRESSED_BYTES:
        raise BulkUnsafeFile(
            f"The parts inflate to {total} bytes; at most {MAX_UNCOMPRESSED_BYTES} are accepted.",
        )


def _scan_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Read one member with a cap, refuse entity declarations; True if it has merged cells."""
    read = 0
    tail = b""
    merges = False
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                read += len(chunk)
                # zipfile stops at the declared size and then checks the CRC-32, so a part that
                # would inflate further fails below; this cap keeps that promise explicit.
                if read > info.file_size:
                    raise BulkUnsafeFile(f"The part {info.filename} inflates past its declared size.")
                window = tail + chunk
                if _DECLARATIONS.search(window):
                    raise BulkUnsafeFile(
                        f"The part {info.filename} declares a DOCTYPE or an ENTITY, which a workbook never needs.",
                        member=info.filename,
                    )
                merges = merges or bool(_MERGE_CELL.search(window))
                tail = window[-_OVERLAP:]
    except zipfile.BadZipFile as error:  # a bad CRC-32 among others: the content is not as declared
        raise BulkUnsafeFile(f"The part {info.filename} is damaged: {error}.") from None
    # zipfile raises NotImplementedError for a compression method it lacks, RuntimeError for an
    # encrypted member: neither is a workbook this service can read.
    except (NotImplementedError, RuntimeError, OSError, EOFError) as error:
        raise BulkNotXlsx(f"The part {info.filename} cannot be read: {error}.") from None
    return merges


# --- finding a sheet's part and its merged ranges --------------------------------------
# openpyxl's read-only mode streams cell values with little memory but does not expose
# merged ranges; they are read here from the one sheet that holds the data.


def worksheet_parts(data: bytes) -> dict[str, str]:
    """Sheet name -> path of its part in the ZIP, from the workbook's relationships."""
    with zipfile.ZipFile(BytesIO(data)) as archive:
        workbook = _office_document(archive)
        base = posixpath.dirname(workbook)
        rels_path = posixpath.join(base, "_rels", posixpath.basename(workbook) + ".rels")
        targets = {
            rel.get("Id"): _resolve(base, rel.get("Target", ""))
            for rel in _parse_xml(archive.read(rels_path)).iter(f"{{{_NS_PACKAGE_REL}}}Relationship")
        }
        sheets = _parse_xml(archive.read(workbook)).iter(f"{{{_NS_MAIN}}}sheet")
        return {
            sheet.get("name", ""): targets[sheet.get(f"{{{_NS_REL}}}id")]
            for sheet in sheets
            if sheet.get(f"{{{_NS_REL}}}id") in targets
        }


def merged_ranges(data: bytes, part: str) -> list[str]:
    """The `ref` of every mergeCell of one sheet part, e.g. ["A3:A5", "C7:D7"].

    Streamed: rows are dropped as they are passed, so a large sheet costs little memory.
    """
    refs: list[str] = []
    sheet_data = None
    with zipfile.ZipFile(BytesIO(data)) as archive, archive.open(part) as stream:
        for event, element in _iterparse(stream, events=("start", "end")):
            tag = element.tag.rsplit("}", 1)[-1]
            if event == "start":
                if tag == "sheetData":
                    sheet_data = element
            elif tag == "mergeCell" and element.get("ref"):
                refs.append(element.get("ref"))
            elif tag == "row" and sheet_data is not None:
                sheet_data.clear()  # the rows read so far: only merges are wanted
    return refs


def _office_document(archive: zipfile.ZipFile) -> str:
    for rel in _parse_xml(archive.read("_rels/.rels")).iter(f"{{{_NS_PACKAGE_REL}}}Relationship"):
        if rel.get("Type") == _OFFICE_DOCUMENT:
            return _resolve("", rel.get("Target", ""))
    raise BulkNotXlsx("The package names no workbook part.")


def _resolve(base: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(base, target))


__all__ = [
    "MAX_BYTES",
    "MAX_UNCOMPRESSED_BYTES",
    "CheckedUpload",
    "check_upload",
    "merged_ranges",
    "worksheet_parts",
]
