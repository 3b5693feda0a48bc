"""AMQP over TLS against the real broker: the certificate is checked against the CA named
in the URL, so a broker signed by anyone else is refused."""

import aio_pika
import pytest
from aiormq.exceptions import AMQPConnectionError

from platen.localstack.tls import make_test_ca


def _tls_url(infra, vhost_name: str) -> str:
    base, query = infra.tls_url().split("?", 1)
    return f"{base}{vhost_name}?{query}"


async def test_a_service_url_with_the_right_ca_connects_over_tls(infra, vhost):
    url = _tls_url(infra, vhost[0])
    conn = await aio_pika.connect(url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue("over-tls", exclusive=True)
        await ch.default_exchange.publish(aio_pika.Message(b"sealed"), routing_key=q.name)
        assert (await q.get(timeout=5)).body == b"sealed"
    # The same port does not speak AMQP in the clear: what passed went over TLS.
    plain = "amqp://" + url.split("://", 1)[1].split("?", 1)[0]
    with pytest.raises((ConnectionError, AMQPConnectionError, OSError)):
        await aio_pika.connect(plain, timeout=5)


async def test_a_broker_certificate_from_another_ca_is_refused(infra, vhost, tmp_path):
    other = make_test_ca(tmp_path / "other-ca")
    url = _tls_url(infra, vhost[0]).split("?", 1)[0] + f"?cafile={other.ca_cert}"
    with pytest.raises(AMQPConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await aio_pika.connect(url)
