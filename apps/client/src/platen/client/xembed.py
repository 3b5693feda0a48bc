"""The X side of a tray icon: find the desktop's system tray and ask it to dock a window.

The freedesktop System Tray protocol: the tray owns the selection
`_NET_SYSTEM_TRAY_S<screen>`; a client asks it to embed a window by sending the owner a
`_NET_SYSTEM_TRAY_OPCODE` client message (SYSTEM_TRAY_REQUEST_DOCK, the window's id), and
the tray reparents that window into itself (XEMBED). Tk has no call for any of this, so
it is spoken here through ctypes, on Tk's own X connection (found from the Tcl
interpreter), with the libraries Tk has already loaded: no second connection, no new
package. Every request is made under a Tk error handler that swallows X errors: a tray
that vanishes between two calls must not end the client (Xlib's default is to exit).

Nothing here is imported unless the GUI runs on X with a tray wanted.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("platen.client")

CLIENT_MESSAGE = 33  # X11 event type ClientMessage
SYSTEM_TRAY_REQUEST_DOCK = 0
XEMBED_MAPPED = 1
P_MIN_SIZE = 1 << 4  # XSizeHints.flags: PMinSize
P_BASE_SIZE = 1 << 8  # PBaseSize
XA_CARDINAL = 6
PROP_MODE_REPLACE = 0


class _ClientMessage(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class _Event(ctypes.Union):
    # XEvent is a union padded to 24 longs; XSendEvent reads that many bytes.
    _fields_ = [("xclient", _ClientMessage), ("pad", ctypes.c_long * 24)]


class _SizeHints(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_long),
        ("x", ctypes.c_int),
        ("y", ctypes.c_int),
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("min_width", ctypes.c_int),
        ("min_height", ctypes.c_int),
        ("max_width", ctypes.c_int),
        ("max_height", ctypes.c_int),
        ("width_inc", ctypes.c_int),
        ("height_inc", ctypes.c_int),
        ("min_aspect", ctypes.c_int * 2),
        ("max_aspect", ctypes.c_int * 2),
        ("base_width", ctypes.c_int),
        ("base_height", ctypes.c_int),
        ("win_gravity", ctypes.c_int),
    ]


def _loaded(part: str) -> ctypes.CDLL | None:
    """The shared library already mapped into this process whose path holds `part`."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                if part in path.rsplit("/", 1)[-1]:
                    return ctypes.CDLL(path)
    except OSError:
        pass
    return None


class SystemTray:
    """The system tray of the screen a Tk root is on, seen through Tk's X connection."""

    def __init__(self, x11: ctypes.CDLL, tk: ctypes.CDLL, display: int, screen: int) -> None:
        self._x = x11
        self._tk = tk
        self._display = display
        self._selection = self._atom(f"_NET_SYSTEM_TRAY_S{screen}")
        self._opcode = self._atom("_NET_SYSTEM_TRAY_OPCODE")
        self._xembed_info = self._atom("_XEMBED_INFO")

    @classmethod
    def of(cls, root) -> SystemTray | None:
        """The tray protocol for `root`'s display; None where it cannot be spoken (not X11,
        or Tk and Xlib not found as shared libraries)."""
        if root.tk.call("tk", "windowingsystem") != "x11":
            return None
        x11, tk = _loaded("libX11.so"), _loaded("libtk8")
        if x11 is None or tk is None:
            return None
        _declare(x11, tk)
        main = tk.Tk_MainWindow(root.tk.interpaddr())
        if not main:
            return None
        # Tk_Display(tkwin) is the first field of every Tk window record.
        display = ctypes.c_void_p.from_address(main).value
        if not display:
            return None
        return cls(x11, tk, display, screen_number(root.winfo_screen()))

    def _atom(self, name: str) -> int:
        return self._x.XInternAtom(self._display, name.encode(), 0)

    def _guarded(self, request):
        """Run X requests with X errors ignored (a window gone meanwhile), synchronously."""
        handler = self._tk.Tk_CreateErrorHandler(self._display, -1, -1, -1, None, None)
        try:
            result = request()
            self._x.XSync(self._display, 0)
            return result
        finally:
            self._tk.Tk_DeleteErrorHandler(handler)

    def manager(self) -> int:
        """The window that owns the tray selection now; 0 when no tray runs."""
        return self._x.XGetSelectionOwner(self._display, self._selection)

    def dock(self, window: int, size: tuple[int, int]) -> int:
        """Ask the tray to embed `window` (asking for `size`); returns the tray's window,
        0 when there is none. The tray does it a moment later (see `parent`)."""
        manager = self.manager()
        if not manager:
            return 0

        def request():
            self._hints(window, size)
            info = (ctypes.c_long * 2)(0, XEMBED_MAPPED)  # XEMBED version 0, shown
            self._x.XChangeProperty(
                self._display,
                window,
                self._xembed_info,
                self._xembed_info,
                32,
                PROP_MODE_REPLACE,
                ctypes.cast(info, ctypes.c_void_p),
                2,
            )
            event = _Event()
            event.xclient.type = CLIENT_MESSAGE
            event.xclient.window = manager
            event.xclient.message_type = self._opcode
            event.xclient.format = 32
            event.xclient.data[0] = 0  # CurrentTime
            event.xclient.data[1] = SYSTEM_TRAY_REQUEST_DOCK
            event.xclient.data[2] = window
            self._x.XSendEvent(self._display, manager, 0, 0, ctypes.byref(event))

        self._guarded(request)
        return manager

    def _hints(self, window: int, size: tuple[int, int]) -> None:
        hints = _SizeHints(flags=P_MIN_SIZE | P_BASE_SIZE)
        hints.min_width = hints.base_width = size[0]
        hints.min_height = hints.base_height = size[1]
        # The tray sizes the icon from these hints (a tray may still choose another).
        self._x.XSetWMNormalHints(self._display, window, ctypes.byref(hints))

    def resize(self, window: int, size: tuple[int, int]) -> None:
        """Ask for another size (the text beside the icon changed)."""
        self._guarded(lambda: self._hints(window, size))

    def parent(self, window: int) -> tuple[int, int]:
        """`window`'s root and parent now ((0, 0) if it is gone): a docked icon's parent is
        inside the tray; one the tray gave back (the tray ended) is on the root."""
        root, parent = ctypes.c_ulong(), ctypes.c_ulong()
        children, count = ctypes.c_void_p(), ctypes.c_uint()

        def request():
            ok = self._x.XQueryTree(
                self._display,
                window,
                ctypes.byref(root),
                ctypes.byref(parent),
                ctypes.byref(children),
                ctypes.byref(count),
            )
            if children.value:
                self._x.XFree(children)
            return (root.value, parent.value) if ok else (0, 0)

        return self._guarded(request)

    def hide(self, window: int) -> None:
        """Unmap `window` (an icon the tray gave back when it went away)."""
        self._guarded(lambda: self._x.XUnmapWindow(self._display, window))


def screen_number(name: str) -> int:
    """The screen of an X display name: "host.example.org:0.1" is screen 1; ":0" is 0."""
    _, _, screen = name.rpartition(":")[2].partition(".")
    return int(screen) if screen.isdigit() else 0


def _declare(x11: ctypes.CDLL, tk: ctypes.CDLL) -> None:
    """Argument and result types: without them ctypes passes pointers as 32-bit ints."""
    p, ul = ctypes.c_void_p, ctypes.c_ulong
    x11.XInternAtom.argtypes = [p, ctypes.c_char_p, ctypes.c_int]
    x11.XInternAtom.restype = ul
    x11.XGetSelectionOwner.argtypes = [p, ul]
    x11.XGetSelectionOwner.restype = ul
    x11.XSendEvent.argtypes = [p, ul, ctypes.c_int, ctypes.c_long, p]
    x11.XSetWMNormalHints.argtypes = [p, ul, p]
    x11.XChangeProperty.argtypes = [p, ul, ul, ul, ctypes.c_int, ctypes.c_int, p, ctypes.c_int]
    x11.XQueryTree.argtypes = [p, ul, p, p, p, p]
    x11.XFree.argtypes = [p]
    x11.XUnmapWindow.argtypes = [p, ul]
    x11.XSync.argtypes = [p, ctypes.c_int]
    tk.Tk_MainWindow.argtypes = [p]
    tk.Tk_MainWindow.restype = p
    tk.Tk_CreateErrorHandler.argtypes = [p, ctypes.c_int, ctypes.c_int, ctypes.c_int, p, p]
    tk.Tk_CreateErrorHandler.restype = p
    tk.Tk_DeleteErrorHandler.argtypes = [p]
