"""Candidate lines in SDP text, read in one place: their address and ufrag, the host candidates, the rewrite for 1:1 NAT."""

from __future__ import annotations

from videoroomd.sdp.candidates import announce_address, candidate_host, candidate_ufrag, host_candidates, keep_candidates

ANSWER = ("v=0\r\n"
          "a=candidate:abc 1 udp 2130706431 10.0.0.5 40000 typ host\r\n"
          "a=candidate:tcp 1 tcp 1518280447 10.0.0.5 9 typ host tcptype passive\r\n"
          "a=candidate:def 1 udp 1694498815 198.51.100.1 40001 typ srflx raddr 10.0.0.5 rport 40000\r\n"
          "a=candidate:ghi 1 UDP 2130706431 ::1 40002 typ host\r\n")


def test_a_candidate_lines_address_and_ufrag_with_or_without_prefixes():
    line = "candidate:1 1 udp 2122260223 192.0.2.4 50000 typ host generation 0 ufrag Ab12 network-id 1"
    assert candidate_host(line) == candidate_host("a=" + line) == candidate_host(line[10:]) == "192.0.2.4"
    assert candidate_ufrag(line) == candidate_ufrag("a=" + line) == "Ab12"
    assert candidate_ufrag("candidate:1 1 udp 1 192.0.2.4 5 typ host") is None
    assert candidate_host("nonsense") is None


def test_host_candidates_are_the_udp_sockets_an_answer_offers():
    assert host_candidates(ANSWER) == [("10.0.0.5", 40000), ("::1", 40002)]
    assert host_candidates("v=0\r\n") == []


def test_the_announced_address_replaces_only_host_candidates():
    out = announce_address(ANSWER, "203.0.113.7")
    assert host_candidates(out) == [("203.0.113.7", 40000), ("203.0.113.7", 40002)]
    assert "198.51.100.1 40001 typ srflx raddr 10.0.0.5" in out
    assert announce_address(ANSWER, None) == ANSWER


def test_keep_candidates_drops_only_the_candidate_lines_refused():
    out = keep_candidates(ANSWER, lambda host: host != "10.0.0.5")
    assert out.split("\r\n") == ["v=0", ANSWER.split("\r\n")[3], ANSWER.split("\r\n")[4], ""]
