"""The Platen CUPS backend."""

from platen.cups_backend import timings

# Python has started (this package runs before `main` and its imports): the first step
# of a job's timings.
timings.mark("started")
