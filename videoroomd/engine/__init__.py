"""The SFU engine: the Membrane media-event protocol, and forwarding of each participant's media to the others."""
