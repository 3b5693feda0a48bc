"""Management URLs naming one node or every node of a cluster."""

import pytest

from platen.operations.management_url import nodes, split_credentials


def test_one_node_with_its_login():
    assert split_credentials("http://mgr:s3cr%40t@rabbit:15672") == (
        "http://rabbit:15672",
        ("mgr", "s3cr@t"),
    )
    assert nodes("http://mgr:pw@rabbit:15672/") == ["http://rabbit:15672"]


def test_every_node_of_a_cluster_with_one_login():
    url = "https://mgr:pw@rabbit1:15671,rabbit2:15671,[::1]:15671/api-prefix"
    assert split_credentials(url) == (
        "https://rabbit1:15671,rabbit2:15671,[::1]:15671/api-prefix",
        ("mgr", "pw"),
    )
    assert nodes(url) == [
        "https://rabbit1:15671/api-prefix",
        "https://rabbit2:15671/api-prefix",
        "https://[::1]:15671/api-prefix",
    ]


def test_a_password_with_a_raw_at_sign_still_splits_where_the_hosts_begin():
    url = "http://admin:p@ss@rabbit1:15672,rabbit2:15672"
    assert split_credentials(url) == ("http://rabbit1:15672,rabbit2:15672", ("admin", "p@ss"))
    assert nodes(url) == ["http://rabbit1:15672", "http://rabbit2:15672"]


def test_without_a_login_the_url_is_kept():
    assert split_credentials("http://rabbit1:15672,rabbit2:15672") == (
        "http://rabbit1:15672,rabbit2:15672",
        None,
    )


@pytest.mark.parametrize("url", ["rabbit:15672", "http://", "http://mgr:pw@/api", "http://,,"])
def test_a_url_naming_no_node_is_refused(url):
    with pytest.raises(ValueError, match="names at least one node"):
        nodes(url)
