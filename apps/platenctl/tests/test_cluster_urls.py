"""A desktop's config file made from a URL naming a cluster's nodes keeps them all."""

from platen.client.config import with_credentials
from platen.ctl.identity import client_config
from platen.events.discovery import node_urls
from platen.events.identities import Credential


def test_a_desktop_config_from_a_cluster_url_names_every_node_and_no_admin():
    admin = "amqps://admin:secret@r1:5671,r2:5671,r3:5671/platen?cafile=/ca.pem"
    text = client_config(Credential(login="bob", username="bob", password="pw"), admin)
    assert 'url = "amqps://r1:5671,r2:5671,r3:5671/platen?cafile=/ca.pem"' in text
    assert "admin" not in text and "secret" not in text
    # What the client then signs in with: bob, at any of the three nodes.
    signed = with_credentials("amqps://r1:5671,r2:5671,r3:5671/platen", "bob", "pw")
    assert node_urls(signed) == [f"amqps://bob:pw@r{i}:5671/platen" for i in (1, 2, 3)]
