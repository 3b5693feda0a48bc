"""What a Platen program's log line is: one JSON object, with the program, the level, the
time, and the job it is about."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
import structlog
from platen.logs import configure_logging
configure_logging("print-agent", "INFO")
log = structlog.get_logger()
log.debug("agent.not_shown")
structlog.contextvars.bind_contextvars(job_id="0f1e2d3c-0000-4000-8000-000000000001")
log.info("agent.deciding", printer="lab")
"""


def test_a_line_is_one_json_object_with_the_program_the_level_the_time_and_the_job():
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=True
    )
    [line] = out.stderr.splitlines()  # the DEBUG line is below the level asked for
    entry = json.loads(line)
    assert entry["event"] == "agent.deciding"
    assert entry["service"] == "print-agent"
    assert entry["job_id"] == "0f1e2d3c-0000-4000-8000-000000000001"
    assert entry["level"] == "info"
    assert entry["printer"] == "lab"
    assert entry["timestamp"].endswith("Z")


def test_the_services_log_alike_and_keep_httpx_quiet():
    code = (
        "import logging\n"
        "from platen.messaging.logs import configure_logging\n"
        "configure_logging('pricing', 'DEBUG')\n"
        "import structlog\n"
        "structlog.get_logger().debug('pricing.priced')\n"
        "print(logging.getLogger('httpx').level == logging.WARNING)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "True"
    assert json.loads(out.stderr)["service"] == "pricing"
