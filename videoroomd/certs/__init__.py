"""Certificates: reading PEM files and generating self-signed DTLS/TLS certificates.

Pure file and crypto work; imports nothing of the package.
"""
