"""A private X display (Xvfb) for GUI tests, and screenshots of its windows."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from platen.localstack import lifeline


@contextmanager
def xvfb(size: str = "1280x800x24") -> Iterator[str]:
    """Start Xvfb on a free display; yields the display name (e.g. ":5")."""
    binary = shutil.which("Xvfb")
    if binary is None:
        raise RuntimeError("Xvfb is not installed (apt-get install xvfb)")
    read, write = os.pipe()
    proc = subprocess.Popen(
        [binary, "-displayfd", str(write), "-screen", "0", size, "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lifeline.watch(proc.pid)
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(10)


def screenshot(display: str, window, path: Path) -> Path:
    """Save the on-screen area of a Tk `window` as a PNG."""
    from PIL import ImageGrab

    window.update()
    x, y = window.winfo_rootx(), window.winfo_rooty()
    w, h = window.winfo_width(), window.winfo_height()
    image = ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=display)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@contextmanager
def tray_host(display: str) -> Iterator[subprocess.Popen]:
    """A real system tray (trayer, an XEMBED tray, across the top right) on `display`,
    stopped on leaving. Tray icons dock into it as on a desktop's panel."""
    binary = shutil.which("trayer")
    if binary is None:
        raise RuntimeError("trayer is not installed (apt-get install trayer)")
    where = ["--edge", "top", "--align", "right", "--widthtype", "request", "--height", "24"]
    # No panel struts or dock hints: there is no window manager to read them.
    plain = ["--SetDockType", "false", "--SetPartialStrut", "false"]
    proc = subprocess.Popen(
        [binary, *where, *plain],
        env={**os.environ, "DISPLAY": display},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lifeline.watch(proc.pid)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def window_tree(display: str) -> list[tuple[int, int, str]]:
    """Every window on `display` as (depth, id, description), from `xwininfo -root -tree`:
    what the X server says, not what a toolkit believes."""
    out = subprocess.run(
        ["xwininfo", "-root", "-tree"],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tree = []
    for line in out.splitlines():
        text = line.lstrip()
        if text.startswith("0x"):
            ident, _, rest = text.partition(" ")
            tree.append(((len(line) - len(text)) // 3, int(ident, 16), rest))
    return tree


def descendants(tree: list[tuple[int, int, str]], ancestor: int) -> set[int]:
    """The windows under `ancestor` in a `window_tree`."""
    found: set[int] = set()
    depth = None
    for level, ident, _ in tree:
        if depth is not None:
            if level <= depth:
                break
            found.add(ident)
        elif ident == ancestor:
            depth = level
    return found
