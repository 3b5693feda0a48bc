from decimal import Decimal

from platen.events.desktop import PrintedNotice
from platen.testing.documents import make_pdf


async def test_one_job(system):
    system.ctl("user", "add", "alice", "--balance", "5.00")
    system.ctl("printer", "add", "lab-1", "--price-per-page", "0.10")
    doc = system.tmp / "report.pdf"
    doc.write_bytes(make_pdf(3))
    out = system.ctl("print", str(doc), "--user", "alice", "--printer", "lab-1", "--wait")
    print(out.stdout)
    assert Decimal(system.user_json("alice")["balance"]) == Decimal("4.70")
    msgs = await system.desktop_messages("alice", 4)
    print(msgs)
    assert any(isinstance(m, PrintedNotice) for m in msgs)
