"""The pricing part of the contract: cost models, policies, quotes, printer views."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from platen.events.accounts import UserGroupsSet
from platen.events.jobs import AnalyseDocument, DocumentAnalysis, SideGroup
from platen.events.printers import (
    CostModel,
    PaperRates,
    Policy,
    PrinterView,
    Quote,
    QuoteJob,
    SetCostModel,
    SetPolicy,
)
from platen.events.registry import MalformedMessage, decode, encode

D = Decimal


def test_printer_view_v1_is_upcast_to_the_simple_model():
    view = decode("pricing.printer", 1, b'{"name": "lab-1", "price_per_page": "0.035"}')
    assert isinstance(view, PrinterView)
    assert view.cost_model == CostModel(page=D("0.035"))
    assert (view.schedule_version, view.groups, view.policies) == (0, [], [])


def test_a_cost_model_round_trips_with_money_as_strings():
    cmd = SetCostModel(
        name="lab-1",
        model=CostModel(
            page=D("0.035"),
            color_page=D("0.25"),
            papers=[PaperRates(paper="A3", grayscale=D("0.07"), color_duplex=D("0.40"))],
            duplex_discount=D("12.5"),
            per_job=D("0.10"),
        ),
    )
    body = encode(cmd)
    model = json.loads(body)["model"]
    assert (model["page"], model["duplex_discount"], model["papers"][0]["color_duplex"]) == (
        "0.035",
        "12.5",
        "0.40",
    )
    assert decode(cmd.message_type, 1, body) == cmd


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ('{"page": "-0.1"}', "cannot be negative"),
        ('{"page": 0.1}', "not a float"),
        ('{"page": "0.1", "duplex_discount": "100.5"}', "percentage from 0 to 100"),
        ('{"page": "0.1", "papers": [{"paper": "B5", "grayscale": "1"}]}', "unknown paper"),
        ('{"page": "0.1", "bogus": 1}', "bogus"),
    ],
)
def test_a_bad_cost_model_on_the_wire_is_malformed(model, error):
    body = f'{{"name": "lab-1", "model": {model}}}'.encode()
    with pytest.raises(MalformedMessage, match=error):
        decode("pricing.printer.cost.set", 1, body)


def test_policy_and_quote_round_trip():
    policy = SetPolicy(
        scope="group",
        target="floor-2",
        policy=Policy(max_pages=100, color_groups=["staff"], confirm_above_cost=D("5")),
    )
    assert decode(policy.message_type, 1, encode(policy)) == policy
    groups = [SideGroup(paper="A4", color=True, count=2)]
    quote = QuoteJob(printer="lab-1", user="alice", copies=2, duplex=True, side_groups=groups)
    assert decode(quote.message_type, 1, encode(quote)) == quote
    reply = Quote(
        printer="lab-1",
        cost=D("1.00"),
        schedule_version=3,
        sides=2,
        copies=2,
        color_sides=2,
        grayscale_sides=0,
        duplex=True,
        breakdown=[],
        denied="no",
    )
    assert decode(reply.message_type, 1, encode(reply)) == reply


def test_a_quote_needs_sides_and_a_scope_is_printer_or_group():
    with pytest.raises(ValidationError):
        QuoteJob(printer="lab-1", side_groups=[])
    with pytest.raises(ValidationError):
        SetPolicy.model_validate({"scope": "building", "target": "x", "policy": {}})


def test_analysis_and_groups_messages_round_trip():
    ask = AnalyseDocument(document=base64.b64encode(b"%PDF-1.4"), duplex=True)
    assert ask.document == b"%PDF-1.4"
    assert decode(ask.message_type, 1, encode(ask)) == ask
    answer = DocumentAnalysis(
        format="pdf",
        pages=3,
        color_pages=[2],
        paper_sizes={"A4": 3},
        sides=3,
        sheets=2,
        side_groups=[SideGroup(paper="A4", color=False, count=2)],
        analysis_ms=12,
    )
    assert decode(answer.message_type, 1, encode(answer)) == answer
    groups = UserGroupsSet(login="alice", groups=["staff"])
    assert decode(groups.message_type, 1, encode(groups)) == groups
    # Version 1 had no revision: such an announcement is older than any counted change.
    old = decode("user.groups_set", 1, b'{"login": "alice", "groups": ["staff"]}')
    assert old == groups and old.revision == 0
