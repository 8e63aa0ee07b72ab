"""The site's state in words a resident understands (the kiosk page): no codes, no jargon.

The readiness states (READY / DEGRADED / NOT_READY / UNKNOWN, edge_server/rules/readiness.py) are
for staff and the C-NSP; a resident needs to know whether the site can help and where its power
comes from. The reasons are not shown to residents (they are for staff: "fridge probe fault"
helps nobody in the waiting room); a resident asks the staff.
"""

from __future__ import annotations

from typing import Any

Words = dict[str, str]  # {"nl": ..., "en": ...}

READINESS: dict[str, Words] = {
    "READY": {
        "nl": "Dit noodsteunpunt is open en alles werkt.",
        "en": "This emergency support point is open and everything is working.",
    },
    "DEGRADED": {
        "nl": "Dit noodsteunpunt is open. Niet alles werkt zoals het hoort; de medewerkers "
              "weten ervan.",
        "en": "This emergency support point is open. Not everything is working as it should; "
              "the staff know about it.",
    },
    "NOT_READY": {
        "nl": "Dit noodsteunpunt kan nu minder doen dan normaal. Vraag de medewerkers wat wel "
              "kan.",
        "en": "This emergency support point can do less than usual right now. Ask the staff "
              "what is possible.",
    },
    "UNKNOWN": {
        "nl": "Hoe het met dit noodsteunpunt gaat, is nu niet bekend. Vraag de medewerkers.",
        "en": "How this emergency support point is doing is not known right now. Ask the staff.",
    },
}

_POWER = {
    "mains": {"nl": "Er is gewone stroom.", "en": "There is normal mains power."},
    "generator": {"nl": "De stroom komt nu van het noodaggregaat.",
                  "en": "Power comes from the emergency generator now."},
    "none": {"nl": "Er is nu geen stroom.", "en": "There is no power right now."},
}

_LINK = {
    True: {"nl": "Verbinding met het coördinatiepunt (C-NSP): werkt.",
           "en": "Link to the coordination point (C-NSP): working."},
    False: {"nl": "Verbinding met het coördinatiepunt (C-NSP): onderbroken. De berichten "
                  "hieronder zijn de laatste die binnenkwamen.",
            "en": "Link to the coordination point (C-NSP): interrupted. The messages below are "
                  "the last ones that came in."},
}


def readiness_words(state: str) -> Words:
    return READINESS.get(state, READINESS["UNKNOWN"])


def power_words(status: dict[str, Any]) -> Words | None:
    """From the status summary (mains_present, gen_running); None when not known."""
    mains, gen = status.get("mains_present"), status.get("gen_running")
    if mains is True:
        return _POWER["mains"]
    if gen is True:
        return _POWER["generator"]
    if mains is False and gen is False:
        return _POWER["none"]
    return None


def link_words(up: bool | None) -> Words | None:
    """None without a configured link (nothing to say to residents)."""
    return None if up is None else _LINK[up]
