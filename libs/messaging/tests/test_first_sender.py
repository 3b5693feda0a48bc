"""A copy a service publishes of a delivery (a dead letter, a replay) names who first sent
it, and that name is believed only on the service's own messages."""

from platen.messaging.senders import FIRST_SENDER, copied_headers, sender_of

OWN = "platen-job-capture"


def test_a_delivery_from_anyone_else_is_from_its_user_id_whatever_its_headers_say():
    forged = {FIRST_SENDER: "platen-admin"}
    assert sender_of("platen-ps-lab", forged, OWN) == "platen-ps-lab"
    assert sender_of(None, forged, OWN) is None


def test_the_services_own_copy_is_from_the_first_sender_it_names():
    assert sender_of(OWN, {FIRST_SENDER: "platen-ps-lab"}, OWN) == "platen-ps-lab"
    assert sender_of(OWN, {FIRST_SENDER: b"platen-ps-lab"}, OWN) == "platen-ps-lab"
    assert sender_of(OWN, {}, OWN) == OWN  # its own message, naming nobody else
    assert sender_of(OWN, {FIRST_SENDER: ""}, OWN) == OWN


def test_a_service_that_does_not_know_its_own_user_believes_no_header():
    assert sender_of(OWN, {FIRST_SENDER: "platen-admin"}, None) == OWN


def test_a_copy_names_the_broker_checked_sender_and_drops_a_forged_name():
    headers, user_id = copied_headers(
        {FIRST_SENDER: "platen-admin", "x-death": [], "platen-mark-job": "j"},
        "platen-ps-lab",
        OWN,
        drop=("x-death",),
    )
    assert headers == {FIRST_SENDER: "platen-ps-lab", "platen-mark-job": "j"}
    assert user_id == OWN  # the broker vouches that the service itself wrote the header


def test_a_copy_of_a_copy_keeps_the_first_sender():
    first, user_id = copied_headers({}, "platen-ps-lab", OWN)
    again, user_id_again = copied_headers(first, user_id, OWN)
    assert again[FIRST_SENDER] == "platen-ps-lab" and user_id_again == OWN


def test_a_copy_names_nobody_when_there_is_no_sender_or_no_own_user():
    assert copied_headers({FIRST_SENDER: "platen-admin"}, None, OWN) == ({}, None)
    assert copied_headers({}, "platen-ps-lab", None) == ({}, None)
