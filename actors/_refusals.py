"""The store's refusals, as the protocol tells them to the person."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from protocol import ProtocolError
from store import Invalid, NotFound, StorageFull


@contextmanager
def refusals() -> Iterator[None]:
    """The store's refusals (not found, invalid, a full disk) become the protocol's errors."""
    try:
        yield
    except NotFound as exc:
        raise ProtocolError("not_found", str(exc)) from None
    except Invalid as exc:
        raise ProtocolError("invalid", str(exc)) from None
    except StorageFull as exc:
        raise ProtocolError("storage_full", str(exc)) from None
