"""bench/chaos.py, short (issue 13, items 5 and 6): 500 jobs through two replicas of every
service on a 3-node RabbitMQ cluster while replicas are SIGKILLed, the node that leads most
of Platen's queues is stopped with jobs in flight (and started again), and PostgreSQL is
restarted. Every job reaches a final state, none is charged twice, every printed job is
charged once, and `ledger verify` passes.

It brings its own cluster and database (platen.testing.cluster): the faults must not hit
the servers the other tests share."""

from __future__ import annotations

import pytest

from bench.chaos import chaos


# A deadline, not a measure: on a loaded 2-core machine the cluster's start and the drain
# take minutes.
@pytest.mark.e2e
@pytest.mark.timeout(1500)
async def test_500_jobs_through_replicas_and_a_cluster_under_faults(tmp_path):
    # Two replicas of each service (the bench runs three): eight processes and three
    # broker nodes share the machine's two cores with the other tests.
    result = await chaos(
        500, replicas=2, users=3, rate=40, kill_every=8, node_down=10, log_dir=tmp_path
    )
    summary = {k: v for k, v in result.items() if k != "fault log"}
    assert result["jobs"] == 500, summary
    assert (result["lost"], result["double"]) == (0, 0), summary
    assert result["printed_charged_once"] == result["printed"] > 0, summary
    assert result["printed_not_charged"] == result["charged_not_printed"] == 0, summary
    assert result["denied"] >= 500 // 20, summary  # the user with no credit's jobs
    # The faults happened, and the broker node was stopped with jobs in flight while it
    # led some of the queues.
    assert result["broker node stops"] == 1 and result["database restarts"] == 1, summary
    assert result["replicas SIGKILLed"] >= 1, summary
    assert result["stopped node led queues"] > 0, summary
    assert result["jobs in flight at node stop"] > 0, summary
    # A submit can reach the broker's delivery limit when the processes holding it are
    # killed again and again (each return counts); the run replays dead letters as an
    # operator does, and then none may be left.
    assert result["dead letters"] == 0, summary
    assert result["ledger verify"] == "ok", summary
