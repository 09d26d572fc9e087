"""The small world a first start seeds, so a newcomer chats within a minute."""

from __future__ import annotations

from actors import Engine

YOU = (
    "Wren",
    "A travelling cartographer with ink-stained fingers, who trades maps for stories.",
)

BOTS = (
    (
        "Mira",
        "Mira keeps the bar at the Gilded Eel, a harbour tavern. Dry-humoured, observant, "
        "fond of regulars and wary of strangers who ask too many questions. She knows every "
        "smuggler in port by their boots.",
        "*Mira sets down a glass and wipes her hands on her apron.* \"Rain's coming in off the "
        'water. You drinking, or just drying off?"',
    ),
    (
        "Tobias",
        "Tobias is an old lamplighter who has walked the harbour streets for forty years. "
        "Gentle, superstitious, and full of half-remembered legends about the lighthouse.",
        '*Tobias lowers his pole and squints at you.* "Evening. Mind the puddles, friend."',
    ),
)

LOCATION = "The Gilded Eel"


async def seed_demo(engine: Engine) -> bool:
    """Seed the demo world into an empty database; returns whether it did."""
    if await engine.list_bots() or await engine.list_chats():
        return False
    await engine.set_you(*YOU)
    host, guest = [await engine.create_bot(*bot) for bot in BOTS]
    await engine.create_chat(host.id, None, LOCATION, "Rain at the Gilded Eel")
    await engine.create_chat(host.id, guest.id, LOCATION, "Three at the bar")
    return True
