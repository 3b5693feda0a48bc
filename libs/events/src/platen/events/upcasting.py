"""Steps shared by several messages' upcasters, with no pydantic: the desktop client's
generated contract (`platen.client.contract`) calls them as the pydantic models do."""

from __future__ import annotations


def sides_for_pages(body: dict) -> dict:
    """The step of every message that once said `pages` for printed sides: the same counts
    under the names `sides`, `color_sides` and `grayscale_sides`. (Here, not with the jobs,
    so that the desktop's messages can use it without loading the job models.)"""
    renamed = {"pages": "sides", "color_pages": "color_sides", "grayscale_pages": "grayscale_sides"}
    return {renamed.get(k, k): v for k, v in body.items()}
