"""Certificates: reading PEM files and generating self-signed DTLS/TLS certificates."""
