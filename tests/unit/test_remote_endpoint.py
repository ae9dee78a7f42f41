"""Where a remote host or model instance is reached: the address of the interface that
routes to the server's S3 endpoint (``S3Endpoint.reached_from``)."""

from __future__ import annotations

from opensage.store.remote_objects import S3Endpoint


def test_a_node_is_reached_on_the_interface_that_routes_to_the_endpoint() -> None:
    assert S3Endpoint("http://127.0.0.1:8484", "us-east-1").reached_from() == "127.0.0.1"
    assert S3Endpoint("http://127.0.0.2:8484", "us-east-1").reached_from() == "127.0.0.1"


def test_an_endpoint_without_a_route_is_answered_on_loopback() -> None:
    # no route to a TEST-NET address in a namespace with loopback only; else the route's
    # own address: either way an address of this machine, never the endpoint's
    address = S3Endpoint("http://192.0.2.1:8484", "us-east-1").reached_from()
    assert address != "192.0.2.1" and address.count(".") == 3
