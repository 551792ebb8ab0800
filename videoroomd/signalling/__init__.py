"""Signalling sockets: Phoenix-channel peer channels (/socket/websocket) and the P2P relay (/signaling/NAME)."""
