"""The analysis does not build a halftone screen it never uses (`analysis.CONTONE_ONLY`).

Ghostscript sets its default halftone whenever a page device is installed (each PDF page,
each `setpagedevice`); `ink_cov` is contone and never halftones. After our setup, for PDF
and for PostScript, in `gs` started per document and in the resident libgs, installing a
page device leaves the halftone a document set as it was: the default one is no longer
built. The ink figures are unchanged: the known-answer corpora (test_colour_analysis,
test_separations, test_resident_ghostscript) still give theirs. Real Ghostscript.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from platen.job_capture.analysis import ghostscript_options, ghostscript_setup

# Sets a halftone of its own (frequency 33), installs a page device, and says which
# halftone is current after it: 33 if the default was not set again.
PROBE = b"""%!PS
<< /HalftoneType 1 /Frequency 33 /Angle 0 /SpotFunction {pop} >> sethalftone
<< /PageSize [300 300] >> setpagedevice
(platen-halftone: ) print
currenthalftone dup /Frequency known { /Frequency get == } { pop (default) = } ifelse
flush
"""


def said(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("platen-halftone:")]


@pytest.mark.parametrize("postscript", [False, True], ids=["pdf setup", "postscript setup"])
def test_a_page_device_does_not_set_the_default_halftone_again_in_gs(tmp_path, postscript):
    probe = tmp_path / "probe.ps"
    probe.write_bytes(PROBE)
    run = subprocess.run(
        [
            "gs",
            *ghostscript_options(str(tmp_path / "ink.txt")),
            "-r36",
            "-c",
            *ghostscript_setup(postscript).splitlines(),
            "-f",
            str(probe),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert said(run.stdout) == ["platen-halftone: 33"]


# In a process of its own (libgs is loaded once a process), as the analysis child runs a
# document: loaded, forked, rendered once after the setup; prints what the document said.
RESIDENT = """
import json, os, sys
from platen.job_capture.analysis import ghostscript_setup
from platen.job_capture.resident_ghostscript import ResidentGhostscript
loaded, how = ResidentGhostscript.load()
assert loaded is not None, how
said = []
class Said:
    def feed(self, chunk):
        said.append(chunk.decode())
document = open(sys.argv[2], "rb").read()
status = loaded.render(document, 36, ghostscript_setup(sys.argv[1] == "postscript"), Said())
print(json.dumps({"status": status, "said": "".join(said)}))
"""


@pytest.mark.parametrize("kind", ["pdf", "postscript"])
def test_a_page_device_does_not_set_the_default_halftone_again_in_resident_libgs(tmp_path, kind):
    probe = tmp_path / "probe.ps"
    probe.write_bytes(PROBE)
    run = subprocess.run(
        [sys.executable, "-c", RESIDENT, kind, str(probe)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    answer = json.loads(run.stdout.splitlines()[-1])
    assert answer["status"] == 0
    assert said(answer["said"]) == ["platen-halftone: 33"]
