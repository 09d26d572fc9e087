"""CHARX: a V3 card as a zip, ``card.json`` at its root and its assets beside it.

Reading is bounded before anything is unpacked: the entries may hold at
most :data:`MAX_CHARX_UNPACKED` bytes together (by the sizes the zip
declares, which the reader also enforces as it inflates), at most
:data:`MAX_CHARX_ENTRIES` entries, and no name may leave the zip's root
(an absolute path, a drive, a ``..`` step or a backslash). Every entry is
kept, so writing the CHARX back gives the same files; the assets the card
names as ``embeded://path`` are those entries.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Mapping

from attrs import frozen

from ._cards import Card, card_json_bytes, card_v3_json, read_card_json
from ._formats import MAX_CHARX_ENTRIES, MAX_CHARX_UNPACKED, CardError, check_size, decode_text

CARD_ENTRY = "card.json"
"""Where a CHARX keeps its card."""

EMBEDDED = "embeded://"
"""The URI scheme a V3 card uses for files inside its CHARX (spelt as the spec spells it)."""


@frozen
class Charx:
    """A CHARX read: its card, and every other entry by path (assets and application data)."""

    card: Card
    files: tuple[tuple[str, bytes], ...] = ()

    def file(self, path: str) -> bytes | None:
        """The entry at ``path``, or None."""
        return dict(self.files).get(path)

    def asset(self, uri: str) -> bytes | None:
        """The bytes an ``embeded://`` URI of the card points at, or None."""
        if not uri.startswith(EMBEDDED):
            return None
        return self.file(uri[len(EMBEDDED) :])

    def icon(self) -> bytes | None:
        """The card's main icon, if the CHARX holds it: the avatar to keep."""
        icons = [a for a in self.card.assets if a.type == "icon"]
        icons.sort(key=lambda a: a.name != "main")
        for icon in icons:
            found = self.asset(icon.uri)
            if found is not None:
                return found
        return None


def read_charx(data: bytes) -> Charx:
    """A CHARX from its bytes.

    Raises ``too_large`` past the import limit, ``bad_charx`` for a file
    that is not a readable zip or has no ``card.json``, ``charx_too_large``
    when the entries would unpack past the limit, ``charx_path`` for a name
    that escapes the root, and the card's own errors for its ``card.json``.
    """
    check_size(data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise CardError("bad_charx", "the CHARX is not a readable zip file") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_CHARX_ENTRIES:
            raise CardError(
                "charx_too_large",
                f"the CHARX holds {len(infos)} files; at most {MAX_CHARX_ENTRIES} are accepted",
            )
        for info in infos:
            _check_name(info.filename)
        total = sum(i.file_size for i in infos)
        if total > MAX_CHARX_UNPACKED:
            raise CardError(
                "charx_too_large",
                f"the CHARX would unpack to {total} bytes; at most {MAX_CHARX_UNPACKED} "
                "bytes (100 MiB) are accepted",
            )
        if CARD_ENTRY not in {i.filename for i in infos}:
            raise CardError("bad_charx", "the CHARX has no card.json at its root")
        files: list[tuple[str, bytes]] = []
        for info in infos:
            files.append((info.filename, _read_entry(archive, info)))
    contents = dict(files)
    card = read_card_json(decode_text(contents[CARD_ENTRY], "card.json"), "card.json")
    return Charx(card, tuple((p, b) for p, b in files if p != CARD_ENTRY))


def write_charx(card: Card, files: Mapping[str, bytes] | None = None) -> bytes:
    """A CHARX of ``card`` (as V3) and ``files`` by path, stored deflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(CARD_ENTRY, card_json_bytes(card_v3_json(card)))
        for path, content in (files or {}).items():
            _check_name(path)
            if path != CARD_ENTRY:
                archive.writestr(path, content)
    return out.getvalue()


def _check_name(name: str) -> None:
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or (len(name) > 1 and name[1] == ":")
        or any(p in ("..", ".") for p in parts)
    ):
        raise CardError("charx_path", f"the CHARX entry {name!r} would unpack outside its root")


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(info) as entry:
            # The reader stops at the declared size; reading one byte past it
            # catches a zip that lies about it.
            content = entry.read(info.file_size + 1)
    except RuntimeError:
        raise CardError("bad_charx", f"the CHARX entry {info.filename!r} is encrypted") from None
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        NotImplementedError,
        ValueError,
        EOFError,
        OSError,
    ) as exc:
        raise CardError(
            "bad_charx", f"the CHARX entry {info.filename!r} cannot be unpacked ({exc})"
        ) from None
    if len(content) > info.file_size:
        raise CardError(
            "charx_too_large", f"the CHARX entry {info.filename!r} is larger than it declares"
        )
    return content
