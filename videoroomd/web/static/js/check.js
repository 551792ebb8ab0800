// The connectivity check at /check: each way a call can reach the server, tried with a peer
// connection of its own, said in plain words.
const $ = (id) => document.getElementById(id);
const TIMEOUT_MS = 10000;  // a connection that has not come up by then counts as failed

const PATHS = [
  { id: "udp", title: "Direct UDP",
    works: "Works: a connection like a call's reached the server's media ports; calls send their sound and video straight there (the fastest way).",
    fails: "Does not work: a connection like a call's could not reach the server's media ports over UDP from this network." },
  { id: "turn-udp", title: "TURN over UDP",
    works: "Works: a connection like a call's reached the media ports through the server's relay over UDP.",
    stuck: "Does not work: the relay answered over UDP, but a connection like a call's did not get through it to the media ports.",
    refused: "Does not work: the relay answered over UDP but refused this browser a relayed address",
    fails: "Does not work: the relay's UDP port is blocked from here." },
  { id: "turn-tcp", title: "TURN over TCP",
    works: "Works: a connection like a call's reached the media ports through the server's relay over TCP, for networks that block UDP.",
    stuck: "Does not work: the relay answered over TCP, but a connection like a call's did not get through it to the media ports.",
    refused: "Does not work: the relay answered over TCP but refused this browser a relayed address",
    fails: "Does not work: the relay's TCP port is blocked from here." },
  { id: "turn-tls", title: "TURN over TLS",
    works: "Works: a connection like a call's reached the media ports through the server's relay over TLS, which looks like web traffic to firewalls.",
    stuck: "Does not work: the relay answered over TLS, but a connection like a call's did not get through it to the media ports.",
    refused: "Does not work: the relay answered over TLS but refused this browser a relayed address",
    fails: "Does not work: the relay's TLS port is blocked from here." },
];

// What a relay's refusal means, by its STUN error code (the browser gives the code; the server's own
// words stay in the server's log and its videoroomd_turn_refused counter).
const REFUSALS = {
  401: "it did not accept the check's credentials (the relay's secret is not the page's server's)",
  403: "it forbids this browser's address",
  486: "its allocation quota is reached (allocations held on the server, by this check or from this address; "
    + "[turn] max_allocations and its per-user and per-address shares)",
  508: "it has no relay port left ([turn] relay_ports)",
};

function show(path, state, text) {
  let item = $(`check-${path.id}`);
  if (!item) {
    item = document.createElement("li");
    item.id = `check-${path.id}`;
    $("check-results").append(item);
  }
  item.dataset.state = state;
  item.textContent = `${path.title}: ${text}`;
}

// Resolves once `pc` has gathered its candidates (they go into the offer: one request, no trickle).
function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") { resolve(); return; }
    const timer = setTimeout(resolve, TIMEOUT_MS / 2);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}

// Resolves with whether `pc` connects (ICE and DTLS, as a call's connection does) within TIMEOUT_MS.
function connected(pc) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), TIMEOUT_MS);
    const look = () => {
      if (pc.connectionState === "connected") { clearTimeout(timer); resolve(true); }
      else if (pc.connectionState === "failed") { clearTimeout(timer); resolve(false); }
    };
    pc.addEventListener("connectionstatechange", look);
    look();
  });
}

// What a call does to the server's media ports, with nothing to send: an offer to receive audio,
// answered by the server's media worker, then ICE and DTLS; through the server's relay when
// `relay` ({server, user}) is given, as a call through it does. Resolves with {state, text}.
async function connection(path, relay = null) {
  const config = relay
    ? { iceServers: [{ urls: relay.server.urls, username: relay.server.username, credential: relay.server.credential }],
        iceTransportPolicy: "relay" }
    : {};
  const pc = new RTCPeerConnection(config);
  const refusals = [];  // the relay's error answers (STUN codes; 7xx are the browser's own: no answer)
  pc.addEventListener("icecandidateerror", (event) => {
    if (event.errorCode >= 300 && event.errorCode < 700) {
      refusals.push(`${REFUSALS[event.errorCode] || "it answered with an error"} (${event.errorCode})`);
    }
  });
  try {
    pc.addTransceiver("audio", { direction: "recvonly" });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const offer = pc.localDescription.sdp;
    if (relay && !/ typ relay/.test(offer)) {
      if (!refusals.length) return { state: "fails", text: path.fails };
      return { state: "fails", server: true, text: `${path.refused}: ${[...new Set(refusals)].join("; ")}. `
        + "That is for the server's administrator to fix, not a problem of this network." };
    }
    let response;
    try {
      response = await fetch(relay ? `/api/check/media?relay=${encodeURIComponent(relay.user)}` : "/api/check/media",
        { method: "POST", cache: "no-store", headers: { "content-type": "application/sdp" }, body: offer });
    } catch (error) {
      return { state: "unavailable", text: `Not tried: the server did not answer (${error.message}).` };
    }
    const body = (await response.text()).trim();
    if (response.status === 429) return { state: "unavailable", text: `Not tried now: ${body.replace(/\.?$/, ".")}` };
    if (!response.ok) return { state: "fails", server: true, text: `Does not work: ${body.replace(/\.?$/, ".")}` };
    await pc.setRemoteDescription({ type: "answer", sdp: body + "\r\n" });
    if (await connected(pc)) return { state: "works", text: path.works };
    return { state: "fails", text: relay ? path.stuck : path.fails };
  } catch (error) {
    return { state: "fails", text: `Does not work: this browser could not make the connection (${error.message}).` };
  } finally {
    pc.close();
  }
}

async function servers() {
  const response = await fetch("/api/check", { cache: "no-store" });
  if (!response.ok) throw new Error((await response.text()).trim());
  return response.json();
}

// The sentence under the rows: whether calls work from here, and how; what fails, said plainly.
function verdict(results) {
  const direct = results.get("udp");
  // in the rows' order, not the order the tries ended in
  const order = PATHS.map((path) => path.id);
  const relays = [...results].filter(([id]) => id !== "udp").sort(([a], [b]) => order.indexOf(a) - order.indexOf(b));
  const relaysWorking = relays.filter(([, state]) => state === "works").map(([id]) => id.replace("turn-", "").toUpperCase());
  if (direct === "works") {
    const also = relaysWorking.length ? ` The relay works too (TURN over ${relaysWorking.join(", ")}).` : "";
    return `Calls work from this network: they send sound and video straight to the server.${also}`;
  }
  if (relaysWorking.length) {
    return `Calls work from this network through the server's relay (TURN over ${relaysWorking.join(", ")}). `
      + (direct === "fails" ? "Direct UDP to the server is blocked here, so calls may be a little slower." : "");
  }
  if (direct === "server") {
    return "Calls cannot carry sound and video now: the server could not open its media for this check (the row "
      + "above says why). That is for the server's administrator to fix, not a problem of this network.";
  }
  if (direct === "fails") {
    const refused = relays.some(([, state]) => state === "server");
    const turn = refused
      ? " Its relay (TURN) refused this browser (the rows above say why): that is for the server's administrator to fix."
      : relays.length ? " Its relay (TURN) does not work from here either."
      : " The server offers no relay (TURN) for such networks; its administrator can turn on [turn].";
    return "Calls cannot carry sound and video from this network: the server's media ports cannot be reached over UDP "
      + `(this network blocks them, or the server announces an address this network cannot reach).${turn}`;
  }
  if (relays.length) return "None of the ways tried works from this network. Try another network, or ask its administrator to allow the ports above.";
  return "Nothing could be tried just now; try again in a minute.";
}

async function run() {
  $("check-again").hidden = true;
  $("check-results").replaceChildren();
  $("check-summary").textContent = "Checking…";
  delete $("check-summary").dataset.done;
  let offered;
  try {
    offered = await servers();
  } catch (error) {
    $("check-summary").textContent = `The check could not start: ${error.message}`;
    $("check-again").hidden = false;
    return;
  }
  const results = new Map();
  const tries = [];
  for (const path of PATHS) {
    let attempt = null;
    if (path.id === "udp") {
      attempt = connection(path);
    } else {
      const server = offered.turn.find((s) => `turn-${s.transport}` === path.id);
      if (server) attempt = connection(path, { server, user: server.username.split(":").pop() });
    }
    if (!attempt) {
      // Not tried is not failed: say why, and leave the verdict to what was tried.
      const why = offered.turn.length
        ? "Not tried: this server's relay does not offer it."
        : "Not tried: this server runs no relay (TURN); calls do not need one where direct UDP works.";
      show(path, "unavailable", why);
      continue;
    }
    show(path, "checking", "checking…");
    tries.push(attempt.then((result) => { show(path, result.state, result.text); results.set(path.id, result.server ? "server" : result.state); }));
  }
  await Promise.all(tries);
  $("check-summary").textContent = verdict(results);
  $("check-summary").dataset.verdict = results.get("udp") === "works" || [...results.values()].includes("works") ? "good" : "bad";
  $("check-summary").dataset.done = "1";
  $("check-again").hidden = false;
}

$("check-again").addEventListener("click", run);
run();
