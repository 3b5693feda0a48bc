"""Broker setup, done with admin rights: the installer, each identity's permissions, limits."""
