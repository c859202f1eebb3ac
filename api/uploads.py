"""The bulk upload's multipart body, parsed as it arrives (python-multipart, the parser
Starlette itself uses).

Starlette's own form parsing bounds the size of plain fields only: a file part is spooled
whole, however large, before the route can look at it. Here the route reads its body itself:
the file part is counted as it streams and the upload is refused with 413
BULK_FILE_TOO_LARGE at the first byte over the limit, without reading the rest; a part other
than the one file in the field `file` (a second file, a form field) is refused with 422
BULK_UPLOAD_MALFORMED as soon as its headers are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from lifecycle.domain.errors import BulkFileTooLarge, BulkUploadMalformed

FILE_FIELD = "file"
# The OpenAPI description of the body the route reads itself (it takes no File parameter).
UPLOAD_BODY_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {
                            "type": "string",
                            "contentMediaType": "application/octet-stream",
                            "title": "File",
                            "description": "The filled bulk-registration sheet (.xlsx); no other part.",
                        }
                    },
                    "additionalProperties": False,
                }
            }
        },
    }
}


def too_large(limit: int) -> BulkFileTooLarge:
    return BulkFileTooLarge(f"The upload is over {limit} bytes.", limit_mb=f"{limit / 1024 / 1024:g}")


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


@dataclass
class _Parts:
    max_bytes: int
    header_name: bytes = b""
    header_value: bytes = b""
    disposition: bytes = b""
    in_file: bool = False
    file_name: str | None = None
    content: bytearray = field(default_factory=bytearray)

    def on_part_begin(self) -> None:
        self.disposition, self.in_file = b"", False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        name = options.get(b"name")
        if name is None:
            raise BulkUploadMalformed("A part of the upload has no name (Content-Disposition).")
        if _text(name) != FILE_FIELD or b"filename" not in options:
            raise BulkUploadMalformed(
                f"The upload has a part {_text(name)!r}: it takes one file, in the field {FILE_FIELD!r}, "
                "and nothing else."
            )
        if self.file_name is not None:
            raise BulkUploadMalformed(f"The upload has more than one file in {FILE_FIELD!r}: send one sheet.")
        self.file_name, self.in_file = _text(options[b"filename"]), True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if len(self.content) + (end - start) > self.max_bytes:
            raise too_large(self.max_bytes)  # stops reading here: the rest is never received
        self.content += data[start:end]


async def read_uploaded_sheet(request: Request, max_bytes: int) -> tuple[str, bytes]:
    """(file name, content) of the one file in the field `file`; raises BulkFileTooLarge or
    BulkUploadMalformed as soon as the body shows it."""
    media_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise BulkUploadMalformed(
            f"The upload is not multipart/form-data with a boundary: send the sheet as a file in {FILE_FIELD!r}."
        )
    parts = _Parts(max_bytes)
    callbacks = {name: getattr(parts, name) for name in (
        "on_part_begin", "on_header_field", "on_header_value", "on_header_end", "on_headers_finished", "on_part_data",
    )}
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError as error:
        raise BulkUploadMalformed(f"The multipart body cannot be read: {error}") from None
    if parts.file_name is None:
        raise BulkUploadMalformed(f"The upload has no file in the field {FILE_FIELD!r}.")
    return parts.file_name, bytes(parts.content)
