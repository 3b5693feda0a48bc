"""Platen's whole stack as local processes, each in a folder of its own: RabbitMQ and
PostgreSQL (`servers`), a CA for TLS (`tls`), cupsd and virtual printers (`cups`), the four
services (`services`) and the demo document (`demo`).

`make run` (deploy/local/run.py) is built on this package alone; the test fixtures
(`platen.testing`) use it too. It never imports the test library.
"""
