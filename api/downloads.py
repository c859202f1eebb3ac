"""The one place a download names its file: `Content-Disposition: attachment` with an ASCII
`filename` for old clients and the real name as RFC 8187 `filename*` (RFC 6266), so a Japanese
name such as 一括登録シート.xlsx reaches the browser whole and never breaks the header."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

# Control characters, and what would end the quoted string or name a folder.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/]')


def safe_file_name(name: str, default: str = "download") -> str:
    """The last part of a path an uploader's browser may send, without control characters."""
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:200] or default


def ascii_fallback(name: str) -> str:
    """The name in printable ASCII: other characters become `_`, the extension is kept."""
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    folded = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    folded = re.sub(r"[^A-Za-z0-9._-]+", "_", folded).strip("_.") or "download"
    extension = re.sub(r"[^A-Za-z0-9]+", "", extension)
    return f"{folded}.{extension}" if extension else folded


def attachment(name: str, fallback: str | None = None) -> dict[str, str]:
    """The Content-Disposition header of a download named `name` (`fallback`: the ASCII name
    for old clients, when a better one than the folded name is known)."""
    name = _UNSAFE.sub("_", safe_file_name(name))
    encoded = quote(name, safe="")
    plain = ascii_fallback(fallback or name)
    return {"Content-Disposition": f"attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}"}
