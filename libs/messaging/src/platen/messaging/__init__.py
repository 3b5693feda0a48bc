"""Messaging shared by the services: topology, publishing, outbox, inbox, handling."""
