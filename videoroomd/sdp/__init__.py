"""SDP text, read and written in one place per purpose (pure code; imports nothing of the package).

:mod:`.offer` reads a client's offer within limits (its m-lines, mids,
directions, ICE ufrag and simulcast RIDs); :mod:`.offer_checks` refuses, by name, what
an offer lacks or has wrong that the media library would trip on; :mod:`.candidates` reads and
rewrites ``a=candidate`` lines (their address, port, type and ufrag);
:mod:`.sections` reads and edits an SDP by m-section (the offer's RTP stream
id extensions, the answer's accepted layers and bandwidth limit). The engine
and the media worker both import from here; nothing here imports either.
"""
