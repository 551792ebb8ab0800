"""The daemon's page, one participant reaching the media only through the built-in TURN
server over TCP (``?relay=tcp``), the other straight over UDP: they see each other."""

from __future__ import annotations


import pytest

from testsupport.daemon import free_port
from testsupport.metrics import read
from testsupport.web_page import ICE, participant, wait_for_moving_video

pytestmark = pytest.mark.browser

# Keeps every RTCPeerConnection the page makes, with the configuration it was given (the test reads them).
KEEP_CONNECTIONS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__connections = [];
  window.RTCPeerConnection = function (config) {
    const pc = new Original(config);
    window.__connections.push({ pc, config });
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();
"""

SELECTED_LOCAL = """
async () => {
  const { pc } = window.__connections[window.__connections.length - 1];
  const stats = await pc.getStats();
  for (const entry of stats.values()) {
    if (entry.type === "transport" && entry.selectedCandidatePairId) {
      const local = stats.get(stats.get(entry.selectedCandidatePairId).localCandidateId);
      return { type: local.candidateType, relayProtocol: local.relayProtocol || null };
    }
  }
  return null;
}
"""


def test_a_participant_whose_media_only_reaches_the_turn_server_over_tcp_holds_a_call(browser, start_daemon):
    turn_port = free_port()
    turn = f'[turn]\nenabled = true\nlisten = "127.0.0.1:{turn_port}"\n'
    daemon = start_daemon(rooms=turn + ICE + "[rooms.lobby]\nmax_peers = 4\n", media="workers = 1")

    direct = participant(browser, daemon, "Ada")
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    context.add_init_script(KEEP_CONNECTIONS)
    relayed = context.new_page()
    relayed.goto(f"{daemon.url}/room/lobby?name=Tess&autojoin=1&relay=tcp")

    wait_for_moving_video(direct, "Tess", timeout=30)
    wait_for_moving_video(relayed, "Ada", timeout=30)

    config = relayed.evaluate("() => window.__connections[window.__connections.length - 1].config")
    assert config["iceTransportPolicy"] == "relay"
    assert [s["urls"] for s in config["iceServers"]] == [f"turn:127.0.0.1:{turn_port}?transport=tcp"]
    assert relayed.evaluate(SELECTED_LOCAL) == {"type": "relay", "relayProtocol": "tcp"}

    metrics = read(daemon)
    tcp = next(line for line in metrics.splitlines()
               if line.startswith('videoroomd_turn_allocations_created_by_transport_total{transport="tcp"}'))
    assert float(tcp.split()[1]) >= 1
