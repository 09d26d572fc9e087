"""The store's refusals, as the protocol tells them to the person."""

from __future__ import annotations

from protocol import refusals_answered

refusals = refusals_answered
"""The store's refusals (not found, invalid, a full disk) become the protocol's errors.

Each store error names its protocol code; the mapping is the protocol's.
"""
