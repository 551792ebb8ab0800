"""The media plane: workers (processes, or a thread in tests) that run the peer connections and the
forwarder, behind one message boundary (:mod:`.messages`) from the trio control plane."""
