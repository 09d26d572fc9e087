"""Test helpers that run real parts on loopback."""
