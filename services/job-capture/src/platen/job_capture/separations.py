"""Separation and DeviceN colour spaces are analysed in the colours printers print them.

A Separation or DeviceN colour space names its colorants (`/PANTONE 185 C`, or `/Black`)
and gives an alternate space with a tint transform for a device that has no such colorant.
Ghostscript's `ink_cov` device, which the analysis renders with, has four: Cyan, Magenta,
Yellow and Black. So it paints a space whose colorants are among them straight into those
inks and never looks at the alternate, while a printer without them (an RGB printer: IPP
Everywhere raster printers, PDF pipelines that render to RGB) paints the alternate:
`[/Separation /Black /DeviceRGB {pop 1 0 0}]` was analysed as black ink and printed red.
A CMYK printer, though, paints `/Cyan` in cyan whatever its alternate. Ghostscript has no
option to make a device use the alternate space.

So the process colorants (`paints_itself`) are renamed to a name no device has (PREFIX and
the name), and Ghostscript paints the alternate through the tint transform, as an RGB
printer does; a document that had any is also rendered as it is, as a CMYK printer paints
it, and a page is colour if either rendering has coloured ink (`analysis.either_view`).
Other spot colours already use their alternate and are left alone, and so is `/All`
(every colorant of the device, cyan, magenta and yellow included: colour unless its tint is
0) and a Separation's `/None` (nothing, on any printer). A DeviceN's `/None` is renamed:
Ghostscript rendering to RGB paints a DeviceN whose colorants are all `/None` in its
alternate, and `ink_cov` takes any start of "None" ("N", "No"...) for it.

In a PDF the names are changed with pikepdf wherever a Separation or DeviceN array is in
the file (resources, images, shadings, patterns, groups and soft masks, fonts, annotations,
NChannel attributes, nested in Indexed and Pattern spaces), and in inline images, whose
colour space Ghostscript takes from the content stream itself (whatever the image's own
filter: its dictionary comes before its data). Ghostscript runs a content stream behind an
image's filter (DCTDecode, JPXDecode) as content too: such a stream is decoded (DCT) and
searched, or the PDF refused where pikepdf cannot decode it (`UnreadableContent`).

A PostScript program cannot be edited before it runs: `alternates_for_postscript` replaces
`setcolorspace` in systemdict by a procedure that renames the colorants of the space it is
given, then sets it; and every other way into a colour space that Ghostscript 10.00 gives
a document with a space of its own making: `shfill`, `makepattern` (a shading pattern's
shading), `.buildshading_and_shfill`, `setcustomcolor` and `customcolorimage` (Adobe's
custom colours, made into a Separation by name). Those of Ghostscript's own procedures that
hold the `setcolorspace`, `makepattern` or `shfill` operators where a document can read
them (`setseparationgray`, `separationimage`, the Pscript5Idiom idiom set, the
ProcessDSCComment user parameter) are replaced or rebuilt without them, so that a document
cannot take an operator out of one and call it itself. It runs with the ink controls'
setup (analysis.INERT_FOR_POSTSCRIPT), before systemdict is locked again, and writes a
marker when it renames a colorant, so that the analysis knows to run the document again
without it. test_separations walks everything a document can read and finds none of the
operators.
"""

from __future__ import annotations

import re

import pikepdf

# Not a colorant name any device has: Ghostscript compares the whole name (up to its first
# NUL byte) with the device's colorants.
PREFIX = "platen-alternate:"
PROCESS_COLORANTS = frozenset({"Cyan", "Magenta", "Yellow", "Black"})
FAMILIES = (pikepdf.Name.Separation, pikepdf.Name.DeviceN)


def paints_itself(colorant: str, device_n: bool) -> bool:
    """Whether Ghostscript's CMYK rendering paints this colorant (a name without its
    slash) in its own ink rather than through the alternate: a process colorant, up to
    the first NUL byte, which is where Ghostscript's comparison stops. In a DeviceN, a
    name that is the start of "None" ("", "N", ... "None") paints nothing in it, and its
    alternate on an RGB printer."""
    name = colorant.split("\x00", 1)[0]
    return name in PROCESS_COLORANTS or (device_n and "None".startswith(name))


def _renamed(name: object, device_n: bool) -> object:
    if not isinstance(name, pikepdf.Name):
        return name  # not a name: Ghostscript refuses the space, nothing to hide
    # The name's bytes, which need not be UTF-8 (pikepdf's `str` would fail on them).
    written = bytes(name.unparse(resolved=True))[1:]
    raw = NAME_ESCAPE.sub(lambda match: bytes([int(match.group(1), 16)]), written)
    if not paints_itself(raw.decode("latin-1"), device_n):
        return name
    return pikepdf.Name("/" + PREFIX + raw.decode("latin-1"))


NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")


def _rename_colorants(space: pikepdf.Array) -> bool:
    """Rename the colorants of this Separation or DeviceN array in place."""
    if len(space) < 2:
        return False
    if space[0] == pikepdf.Name.Separation:
        renamed = _renamed(space[1], device_n=False)
        if renamed == space[1]:
            return False
        space[1] = renamed
        return True
    names = space[1]
    if not isinstance(names, pikepdf.Array):
        return False
    changed = False
    for index, name in enumerate(list(names)):
        renamed = _renamed(name, device_n=True)
        if renamed != name:
            names[index] = renamed
            changed = True
    return changed


def _is_colour_space(array: pikepdf.Array) -> bool:
    return len(array) >= 2 and any(array[0] == family for family in FAMILIES)


def _walk(root: pikepdf.Object) -> bool:
    """Rename the colorants of every Separation and DeviceN array in `root` and in the
    direct objects it holds (an indirect one is walked as an object of its own)."""
    changed = False
    pending = [root]
    while pending:
        obj = pending.pop()
        if isinstance(obj, pikepdf.Array):
            if _is_colour_space(obj):
                changed |= _rename_colorants(obj)
            children = list(obj)
        elif isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
            children = list(obj.values())
        else:
            continue
        pending.extend(
            child
            for child in children
            if isinstance(child, (pikepdf.Array, pikepdf.Dictionary)) and not child.is_indirect
        )
    return changed


# In a content stream, a colour space can be an array only in an inline image's dictionary
# (a name is looked up in the resources, walked above). Content is not parsed for it: qpdf
# and Ghostscript parse damaged content differently (a stray `<<` or a missing `EI` hides an
# image from one and not the other). Instead every stream's bytes are searched for the
# tokens of a Separation or DeviceN array, wherever they are, strings and image data
# included, and the colorants that follow are renamed in place, keeping their length, so
# that nothing after them moves. Changing a string or an image's samples by mistake only
# changes the renamed rendering; the rendering as sent is the other view, and either's
# colour is charged.
NAME = re.compile(rb"/([^\s\x00/\[\]<>(){}%]*)")
SKIPPED = re.compile(rb"(?:[\s\x00]+|%[^\r\n]*)*")
NAME_ESCAPE_TEXT = re.compile(rb"#[0-9A-Fa-f]{2}")


def _decoded(token: bytes) -> bytes:
    return NAME_ESCAPE.sub(lambda match: bytes([int(match.group(1), 16)]), token)


def _same_length(token: bytes) -> bytes:
    """`token` (a name's text, without its slash) changed so that its name is another
    one, which no device has: the case of its letters swapped, escapes kept as written
    (unless every letter is escaped: then the first of them is swapped). The empty name
    becomes `_`, the only rename one character longer."""
    if not token:
        return b"_"
    swapped = NAME_ESCAPE_TEXT.sub(lambda match: match.group(0).lower(), token.swapcase())
    if _decoded(swapped) != _decoded(token):
        return swapped
    for escape in NAME_ESCAPE_TEXT.finditer(token):
        letter = _decoded(escape.group(0))
        if letter.isalpha():
            replaced = b"#%02X" % letter.swapcase()[0]
            return token[: escape.start()] + replaced + token[escape.end() :]
    return token + b"_"  # no letter at all (not a name that paints itself)


def _rename_in_content(data: bytes) -> bytes | None:
    """`data` with the process colorants of every Separation and DeviceN array in it
    renamed by `_same_length`; None if there were none."""
    if b"Separation" not in data and b"DeviceN" not in data and b"#" not in data:
        return None
    edits: list[tuple[int, int, bytes]] = []
    for family in NAME.finditer(data):
        kind = _decoded(family.group(1))
        if kind not in (b"Separation", b"DeviceN"):
            continue
        position = SKIPPED.match(data, family.end()).end()
        if kind == b"DeviceN":
            if data[position : position + 1] != b"[":
                continue
            position += 1
        while True:
            position = SKIPPED.match(data, position).end()
            name = NAME.match(data, position)
            if name is None:
                break
            colorant = _decoded(name.group(1)).decode("latin-1")
            if paints_itself(colorant, kind == b"DeviceN"):
                edits.append((name.start(1), name.end(1), _same_length(name.group(1))))
            position = name.end()
            if kind == b"Separation":
                break
    if not edits:
        return None
    out = bytearray(data)
    for start, end, replacement in reversed(edits):
        out[start:end] = replacement
    return bytes(out)


class UnreadableContent(ValueError):
    """A stream Ghostscript may run as a page's content is behind a filter pikepdf does
    not decode (JPX, JBIG2, CCITT): it cannot be searched, so the PDF is not analysed."""


# Ghostscript runs a stream as content whatever its filters: a content stream behind
# DCTDecode or JPXDecode (each lossless enough for the bytes of a short line of content)
# is run as content, and an inline image in it takes its colour space from its bytes. So
# every stream that may be run as content is searched after every filter (qpdf decodes
# DCT only at its level `all`, which also decodes images: that is why it is not the
# level for every stream). What Ghostscript only draws as an image (an XObject whose
# /Subtype is /Image, reached by `Do`, a soft mask, a mask) is not run, whatever its
# filter; the same stream named as a page's content, a Type 3 glyph or an appearance, or
# made a tiling pattern (/PatternType), is. (A soft mask's group is run, but what it draws
# is only the mask's shape: it prints no colour.)
CONTENT_KEYS = ("/Contents", "/CharProcs", "/AP", "/N", "/R", "/D")


def _named_as_content(pdf: pikepdf.Pdf) -> set[tuple[int, int]]:
    """The streams a page's /Contents, a Type 3 font's /CharProcs or an annotation's /AP
    (its /N, /R, /D, and their states) names, wherever such a key is in the file."""
    found: set[tuple[int, int]] = set()
    for obj in pdf.objects:
        pending: list[object] = [obj]
        while pending:
            item = pending.pop()
            if isinstance(item, pikepdf.Array):
                pending.extend(child for child in item if _direct_container(child))
                continue
            if not isinstance(item, (pikepdf.Dictionary, pikepdf.Stream)):
                continue
            for key, value in item.items():
                named = [value]
                if isinstance(value, pikepdf.Array):
                    named = list(value)
                elif isinstance(value, pikepdf.Dictionary):
                    named = [value, *value.values()]
                if key in CONTENT_KEYS:
                    found.update(v.objgen for v in named if isinstance(v, pikepdf.Stream))
                if _direct_container(value):
                    pending.append(value)
    return found


def _direct_container(obj: object) -> bool:
    return isinstance(obj, (pikepdf.Array, pikepdf.Dictionary)) and not obj.is_indirect


def _read(stream: pikepdf.Stream, **level) -> bytes:
    """The stream's bytes after its filters. MemoryError where they do not fit in the
    analysis's memory limit (gigabytes behind stacked filters): qpdf says so only as a
    decoding error naming C++'s bad_alloc, which is not a damaged document."""
    try:
        return stream.read_bytes(**level)
    except pikepdf.DataDecodingError as exc:
        if "bad_alloc" in str(exc):
            raise MemoryError("a stream decodes to more than the memory limit") from None
        raise


def _rename_inline_images(stream: pikepdf.Stream) -> bool:
    try:
        data = _read(stream)
    except pikepdf.PdfError:
        try:
            data = _read(stream, decode_level=pikepdf.StreamDecodeLevel.all)  # DCT
        except pikepdf.PdfError:
            raise UnreadableContent("content behind a filter pikepdf cannot read") from None
    renamed = _rename_in_content(data)
    if renamed is None:
        return False
    stream.write(renamed)  # unfiltered: Ghostscript reads the renamed bytes as they are
    return True


def use_alternates(pdf: pikepdf.Pdf) -> bool:
    """Rename every process colorant of a Separation or DeviceN space in `pdf` (see the
    module); True if any was. UnreadableContent: a stream that may be run as content
    cannot be decoded."""
    changed = False
    content = _named_as_content(pdf)
    for obj in pdf.objects:
        if isinstance(obj, (pikepdf.Array, pikepdf.Dictionary, pikepdf.Stream)):
            changed |= _walk(obj)
        if isinstance(obj, pikepdf.Stream):
            image = obj.get("/Subtype") == pikepdf.Name.Image and "/PatternType" not in obj
            # An image's own samples are never run: not decoded at all (a scan's samples
            # can be hundreds of megabytes, which Ghostscript renders downsampled).
            if not image or obj.objgen in content:
                changed |= _rename_inline_images(obj)
    return changed


# --------------------------------------------------------------------------- PostScript

# One statement a line, each shorter than the 2048 characters Ghostscript takes in one
# command-line argument (`gs -c` runs each argument on its own). Run with systemdict
# writable and the allocation mode global; the helper dictionary is on the dictionary
# stack only while this runs, and every procedure a document can reach is executeonly
# and refers to the helpers and operators directly (`//`, `bind`), never by a name a
# document could define.
_POSTSCRIPT = r"""
currentglobal true setglobal 60 dict begin
/PREFIX (PREFIXTEXT) def /PROCESS [(Cyan) (Magenta) (Yellow) (Black)] def
/ALTBOX 1 array def /NEEDBOX 1 array def /SUBSTBOX 1 array def /SEEN [false] def
/isarray { type dup /arraytype eq exch /packedarraytype eq or } bind def
/isdict { dup type /dicttype eq { rcheck } { pop false } ifelse } bind def
/readablearray { dup //isarray exec { rcheck } { pop false } ifelse } bind def
/paints {
  exch dup type /nametype eq { dup length string cvs } if
  dup type /stringtype eq {
    (\000) search { exch pop exch pop } if
    false //PROCESS { 2 index eq or } forall
    exch 3 -1 roll { dup length 4 le { (None) 0 2 index length getinterval eq } { pop false }
        ifelse or } { pop } ifelse
  } { pop pop false } ifelse
} bind def
/renamed {
  2 copy //paints exec {
    pop dup type /nametype eq { dup length string cvs } if
    //PREFIX length 1 index length add string dup 0 //PREFIX putinterval dup //PREFIX length 4
        -1 roll putinterval
    cvn
    //SEEN 0 get not { //SEEN 0 true put (\nMARKERTEXT\n) print flush } if
  } { pop } ifelse
} bind def
/attrneeds {
  dup //isdict exec {
    false exch
    dup /Colorants known { dup /Colorants get //isdict exec } { false } ifelse {
      dup /Colorants get { exch pop //NEEDBOX 0 get exec 3 -1 roll or exch } forall
    } if
    dup /Process known { dup /Process get //isdict exec } { false } ifelse {
      /Process get dup /ColorSpace known { /ColorSpace get //NEEDBOX 0 get exec or } { pop }
          ifelse
    } { pop } ifelse
  } { pop false } ifelse
} bind def
/needs {
  dup //readablearray exec { dup length 1 gt } { false } ifelse {
    dup 0 get dup /Separation eq {
      pop dup 1 get false //paints exec exch dup length 2 gt { 2 get //NEEDBOX 0 get exec or }
          { pop } ifelse
    } { dup /DeviceN eq {
      pop false 1 index 1 get dup //readablearray exec { { true //paints exec or } forall } {
          pop } ifelse
      exch dup length 2 gt { dup 2 get //NEEDBOX 0 get exec 3 -1 roll or exch } if
      dup length 4 gt { 4 get //attrneeds exec or } { pop } ifelse
    } { dup /Indexed eq exch /Pattern eq or { 1 get //NEEDBOX 0 get exec } { pop false } ifelse
        } ifelse } ifelse
  } { pop false } ifelse
} bind def
//NEEDBOX 0 /needs load put
/attributes {
  dup //isdict exec {
    dup length dict copy
    dup /Colorants known { dup /Colorants get //isdict exec } { false } ifelse {
      dup /Colorants get dup length dict exch
      { //ALTBOX 0 get exec 2 index 3 1 roll put } forall
      1 index exch /Colorants exch put
    } if
    dup /Process known { dup /Process get //isdict exec } { false } ifelse {
      dup /Process get dup length dict copy
      dup /ColorSpace known { dup /ColorSpace 2 copy get //ALTBOX 0 get exec put } if
      1 index exch /Process exch put
    } if
  } if
} bind def
/alternate {
  dup //readablearray exec { dup length 1 gt } { false } ifelse {
    dup 0 get dup /Separation eq {
      pop dup length array copy
      dup 1 2 copy get false //renamed exec put
      dup length 2 gt { dup 2 2 copy get //ALTBOX 0 get exec put } if
    } { dup /DeviceN eq {
      pop dup length array copy
      dup 1 get dup //readablearray exec {
        dup length array copy
        0 1 2 index length 1 sub { 1 index exch 2 copy get true //renamed exec put } for
        1 index exch 1 exch put
      } { pop } ifelse
      dup length 2 gt { dup 2 2 copy get //ALTBOX 0 get exec put } if
      dup length 4 gt { dup 4 2 copy get //attributes exec put } if
    } { dup /Indexed eq exch /Pattern eq or {
      dup length array copy dup 1 2 copy get //ALTBOX 0 get exec put
    } if } ifelse } ifelse
  } if
} bind def
//ALTBOX 0 /alternate load put
/invm { currentglobal 3 1 roll 1 index gcheck setglobal exec exch setglobal } bind def
/space { dup //needs exec { { //alternate exec } //invm exec } if } bind def
/shadingneeds { dup //isdict exec { dup /ColorSpace known } { false } ifelse { /ColorSpace get
    //needs exec } { pop false } ifelse } bind def
/shading {
  dup //shadingneeds exec {
    { dup length dict copy dup /ColorSpace 2 copy get //alternate exec put } //invm exec
  } if
} bind def
/pattern {
  dup //isdict exec { dup /Shading known } { false } ifelse { dup /Shading get //shadingneeds
      exec } { false } ifelse {
    { dup length dict copy dup /Shading 2 copy get //shading exec put } //invm exec
  } if
} bind def
/custom {
  dup //readablearray exec { dup length 0 gt } { false } ifelse {
    dup dup length 1 sub get dup type /stringtype eq { false //paints exec } { pop false }
        ifelse {
      { dup length array copy dup dup length 1 sub 2 copy get false //renamed exec dup length
          string cvs put } //invm exec
    } if
  } if
} bind def
/SETCS /setcolorspace load def /SHFILL /shfill load def /MKPAT /makepattern load def
/BSS [ /.buildshading_and_shfill load ] def /SCC [ /setcustomcolor load ] def /CCI [
    /customcolorimage load ] def
/SSG [ /setseparationgray load ] def /SIMG [ /separationimage load ] def
systemdict begin
/setcolorspace { //space exec //SETCS } bind executeonly def
/shfill { //shading exec //SHFILL } bind executeonly def
/.buildshading_and_shfill { //shading exec //BSS 0 get exec } bind executeonly def
/makepattern { exch //pattern exec exch //MKPAT } bind executeonly def
/setcustomcolor { exch //custom exec exch //SCC 0 get exec } bind executeonly def
/customcolorimage { //custom exec //CCI 0 get exec } bind executeonly def
/setseparationgray { //SSG 0 get exec } bind executeonly def
/separationimage { //SIMG 0 get exec } bind executeonly def
end
/BYNAME << /SETCS load /setcolorspace cvx /MKPAT load /makepattern cvx /SHFILL load /shfill cvx
    >> def
/subst {
  dup //readablearray exec {
    dup xcheck exch
    [ exch { dup type /operatortype eq { dup //BYNAME exch known } { false } ifelse { //BYNAME
        exch get } { //SUBSTBOX 0 get exec } ifelse } forall ]
    exch { cvx } if
  } if
} bind def
//SUBSTBOX 0 /subst load put
false setglobal << /ProcessDSCComment currentuserparams /ProcessDSCComment get //subst exec >>
    setuserparams true setglobal
/Pscript5Idiom /IdiomSet findresource dup length dict exch { //subst exec 2 index 3 1 roll put
    } forall /Pscript5Idiom exch /IdiomSet defineresource pop
end setglobal
"""

# The operators a document must reach only through the replacements above.
GUARDED_OPERATORS = ("setcolorspace", "makepattern", "shfill")


def _statements(text: str) -> tuple[str, ...]:
    """Each top-level statement of `text` (a line not indented, with the indented lines
    after it) on one line."""
    statements: list[list[str]] = []
    for line in text.strip().splitlines():
        if statements and line.startswith((" ", "}")):
            statements[-1].append(line)
        else:
            statements.append([line])
    return tuple(" ".join(" ".join(lines).split()) for lines in statements)


def alternates_for_postscript(marker: str) -> tuple[str, ...]:
    """The PostScript set-up (one statement a string) that makes a document's Separation
    and DeviceN spaces use their alternate; it writes `marker` on a line of its own (once)
    when it renamed a colorant, that is when the document's pages may print otherwise on a
    CMYK printer (see `analysis._analyse_postscript`)."""
    if not MARKER_TEXT.fullmatch(marker):
        raise ValueError("a marker is letters, digits, - and : only")
    return _statements(_POSTSCRIPT.replace("PREFIXTEXT", PREFIX).replace("MARKERTEXT", marker))


MARKER_TEXT = re.compile(r"[A-Za-z0-9:-]{1,100}")
