"""Ghostscript loaded once per analysis worker parent, not started once per document.

Starting Ghostscript (`gs`) costs about 50 to 75 ms of CPU before it reads a byte of the
document: loading the library, building the PostScript interpreter, its resources and
fonts. `analysis_worker`'s parent does that once, through libgs's C API (ctypes; the
binding on PyPI lacks the two calls this needs, `gsapi_add_control_path` and stdio
callbacks with a handle), and every document's child, forked from it, inherits an
interpreter that is ready: it only permits reading its own document and runs it.

Isolation is the child's, as before: one document per forked child, which ends with it,
so nothing a document does (PostScript can redefine a great deal) reaches the next one;
the parent never runs a document at all. Ghostscript runs with -dSAFER as the program
did (with -dWRITESYSTEMDICT, among `ghostscript_options`: each child's setup makes a
PostScript document's ink controls inert and its colour spaces use their alternate, then
locks systemdict, before the document runs; see `analysis`),
and its file permissions are the program's: its own resources, the document, and the ink
report in the child's working directory.

Where libgs cannot be loaded or initialised, `load` says why and the worker starts `gs`
per document as before (`analysis._ghostscript`).
"""

from __future__ import annotations

import ctypes
import mmap
from pathlib import Path

from platen.job_capture.analysis import (
    INK_REPORT,
    PageMarkers,
    ghostscript_options,
)

LIBRARY = "libgs.so.10"
# iapi.h / ierrors.h.
ARG_ENCODING_UTF8 = 1
PERMIT_FILE_READING = 0
ERROR_QUIT = -101  # `quit` in the document: its exit code is the status
# glibc's mallopt: keep freed memory instead of handing it back. Each page's raster (4 MB
# for A4 at 100 dpi) is freed and allocated again at every page size change; given back
# each time, every page would fault it in anew (a fifth of the CPU of a long document).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_FREED_BYTES = 512 * 2**20
# Heap made ready, untouched, in the parent, in transparent huge pages where the kernel
# allows them (madvise): what a child allocates anew (the page's raster, the PDF
# interpreter's state: about 7 MB for a page) then costs a few 2 MB faults instead of
# about 2,000 of 4 kB. Untouched, it takes no memory in the parent. Pages a child
# writes that the parent had written stay 4 kB copies.
HUGE_HEAP_BYTES = 64 * 2**20
HUGE_PAGE = 2 * 2**20
# PostScript VM allocated before Ghostscript collects its garbage. A collection marks
# every object the interpreter holds, so in a child it writes to (and copies) every page
# of the parent's VM: about half of what was left of a short document's page faults. A
# document that allocates more is still collected, every 64 MB, far under its memory
# limit (1 GiB by default).
GC_THRESHOLD_BYTES = 64 * 2**20
# The PDF interpreter's context made ahead, in the parent, with the parameters the
# document's `runpdfbegin` would give it (Ghostscript's options; a page count of 0, as in
# every fresh child): making one loads the default ICC profiles from disk and has lcms2
# build a gray link with black point detection, about 2 ms of every PDF's child. No
# document has run when it is made, and each child has its own copy of it, so no document
# can change what another's context is. `runpdfbegin` calls `.PDFInit` through
# `newpdf_runpdfbegin`, found by name: a copy of it in userdict (looked up before
# systemdict) calls PlatenPDFInit instead, which hands out the context made ahead once
# and, for any later PDF in the same child (a collection's), makes a new one as before.
# The "once" flag lives in global VM, so the document's `restore` cannot set it back.
# An error leaves the dictionary and operand stacks and userdict's entries as they were
# (then every child makes its context, as before). Only on the Ghostscript this was
# written and tested against (10.00: `<< parameters >> .PDFInit context`); another keeps
# a context made per child until someone checks its `newpdf_runpdfbegin`.
AHEAD_REVISION = 10000
PDF_CONTEXT_AHEAD = """
userdict /PlatenDicts countdictstack put
{
  revision AHEAD_REVISION eq
  systemdict /newpdf_runpdfbegin known and systemdict /.PDFInit known and {
    8 dict begin
    /Context << /CumulativePageCount currentpagedevice /PageCount get >> begin
      newpdf_gather_parameters end .PDFInit 1 array astore def
    /Taken true setglobal 1 array false setglobal dup 0 false put def
    /Take [ Taken 0 /get cvx [ /.PDFInit load ] cvx
      [ /pop cvx Taken 0 true /put cvx Context 0 /get cvx ] cvx /ifelse cvx ] cvx def
    /Swap {
      dup length array copy
      0 1 2 index length 1 sub {
        2 copy get
        dup type dup /arraytype eq exch /packedarraytype eq or 1 index xcheck and {
          Swap 2 index 3 1 roll put
        } {
          /.PDFInit load eq { 1 index exch /PlatenPDFInit cvx put } { pop } ifelse
        } ifelse
      } for
      cvx
    } def
    /Begin systemdict /newpdf_runpdfbegin get Swap def
    userdict /PlatenPDFInit /Take load put
    userdict /newpdf_runpdfbegin /Begin load put
    end
  } if
} stopped pop
countdictstack userdict /PlatenDicts get sub { end } repeat
userdict /PlatenDicts undef
clear
""".replace("AHEAD_REVISION", str(AHEAD_REVISION))

_Write = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)


class ResidentGhostscript:
    """One initialised Ghostscript instance; `render` runs one document in it, once."""

    def __init__(self, lib: ctypes.CDLL, instance: ctypes.c_void_p) -> None:
        self._lib = lib
        self._instance = instance
        self._markers: PageMarkers | None = None
        self.used = False
        # Kept referenced: libgs calls them for as long as the instance lives.
        self._stdin = _Write(lambda _handle, _buf, _len: 0)  # the document reads EOF
        self._stdout = _Write(self._write_stdout)
        self._stderr = _Write(lambda _handle, _buf, length: length)  # dropped, as before

    @classmethod
    def load(
        cls, fewer_faults: bool = True, pdf_context_ahead: bool = True
    ) -> tuple[ResidentGhostscript | None, str]:
        """An initialised instance, or None and why not (then `gs` runs per document).
        `pdf_context_ahead`: see PDF_CONTEXT_AHEAD (where it fails, each PDF's child
        makes its context, as before)."""
        try:
            lib = ctypes.CDLL(LIBRARY)
        except OSError as exc:
            return None, f"libgs cannot be loaded ({exc})"
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, KEEP_FREED_BYTES)
        libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES)
        if fewer_faults:
            _heap_in_huge_pages(libc)
        instance = ctypes.c_void_p()
        if lib.gsapi_new_instance(ctypes.byref(instance), None) < 0:
            return None, "libgs refused a new instance"
        resident = cls(lib, instance)
        lib.gsapi_set_stdio_with_handle(
            instance, resident._stdin, resident._stdout, resident._stderr, None
        )
        lib.gsapi_set_arg_encoding(instance, ARG_ENCODING_UTF8)
        # The report is written relative to the working directory: each child's own. No
        # -r: a resolution given at start-up is fixed, and later HWResolution requests
        # (each document's, see `render`) would be ignored without a word.
        args = ["gs", *ghostscript_options(INK_REPORT)]
        argv = (ctypes.c_char_p * len(args))(*(arg.encode() for arg in args))
        code = lib.gsapi_init_with_args(instance, len(args), argv)
        if code < 0:
            lib.gsapi_delete_instance(instance)
            return None, f"libgs failed to initialise (code {code})"
        if fewer_faults:
            resident.run_trusted(f"{GC_THRESHOLD_BYTES} setvmthreshold")
        if pdf_context_ahead:
            resident.run_trusted(PDF_CONTEXT_AHEAD)
        return resident, "libgs"

    def _write_stdout(self, _handle: object, buffer: int, length: int) -> int:
        if self._markers is not None and length > 0:
            self._markers.feed(ctypes.string_at(buffer, length))
        return length

    def prepare(self, dpi: int) -> bool:
        """Open the device at `dpi` before a document is known: in a spare child (see
        `analysis_worker`), so that allocating and faulting in the page's raster is done
        while it waits, not on a job's path. Trusted work only: the same request every
        document's prologue makes first, which then changes nothing when its resolution
        is this one (a document at another resolution has its raster made again)."""
        if self.used:
            raise RuntimeError("a resident Ghostscript runs one document")
        return self.run_trusted(f"<< /HWResolution [{dpi} {dpi}] >> setpagedevice")

    def run_trusted(self, postscript: str) -> bool:
        """Run our own PostScript (never a document's) in the interpreter."""
        request = postscript.encode()
        exit_code = ctypes.c_int(0)
        code = self._lib.gsapi_run_string_with_length(
            self._instance, request, len(request), 0, ctypes.byref(exit_code)
        )
        return code >= 0

    def render(self, document: bytes, dpi: int, setup: str, markers: PageMarkers) -> int:
        """Run `document` (in the forked child that called) at `dpi`, after `setup`."""
        if self.used:  # what one document did to the interpreter is not for another
            raise RuntimeError("a resident Ghostscript runs one document")
        self.used = True
        self._markers = markers
        source = Path("source").absolute()
        source.write_bytes(document)
        lib, instance, exit_code = self._lib, self._instance, ctypes.c_int(0)
        lib.gsapi_add_control_path(instance, PERMIT_FILE_READING, str(source).encode())
        prologue = f"<< /HWResolution [{dpi} {dpi}] >> setpagedevice {setup}".encode()
        code = lib.gsapi_run_string_with_length(
            instance, prologue, len(prologue), 0, ctypes.byref(exit_code)
        )
        if code >= 0:
            code = lib.gsapi_run_file(instance, str(source).encode(), 0, ctypes.byref(exit_code))
        # The ink report is written through C stdio and its file stays open until the
        # device closes: flushed, it is whole, without the cost of closing the instance.
        ctypes.CDLL(None).fflush(None)
        self._markers = None
        if code == 0:
            return 0
        if code == ERROR_QUIT:
            return exit_code.value
        return exit_code.value or 1


def _heap_in_huge_pages(libc: ctypes.CDLL) -> bool:
    """Grow the heap by HUGE_HEAP_BYTES, untouched and kept free (KEEP_FREED_BYTES), and
    ask for that part in huge pages (not the parent's own: those stay 4 kB, so a child
    copies what it writes of them 4 kB at a time); False where the kernel refuses (then
    4 kB pages, as before)."""
    libc.malloc.restype = ctypes.c_void_p
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    reserve = libc.malloc(HUGE_HEAP_BYTES)
    if not reserve:
        return False
    try:
        start = (reserve + HUGE_PAGE - 1) // HUGE_PAGE * HUGE_PAGE
        end = (reserve + HUGE_HEAP_BYTES) // HUGE_PAGE * HUGE_PAGE
        return libc.madvise(start, end - start, mmap.MADV_HUGEPAGE) == 0
    finally:
        libc.free(ctypes.c_void_p(reserve))
