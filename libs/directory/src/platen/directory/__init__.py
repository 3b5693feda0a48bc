"""The site's directory, shared by the services that read it (platen.directory.ldap)."""
