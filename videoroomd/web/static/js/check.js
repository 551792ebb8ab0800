// The connectivity check at /check: each way a call can reach the server, tried with a peer
// connection of its own, said in plain words.
const $ = (id) => document.getElementById(id);
const TIMEOUT_MS = 8000;

const PATHS = [
  { id: "udp", title: "Direct UDP",
    works: "Works: calls can send their sound and video straight to the server (the fastest way).",
    fails: "Does not work: this network blocks UDP to the server; calls go through TURN below, if one works." },
  { id: "turn-udp", title: "TURN over UDP",
    works: "Works: calls can go through the server's relay over UDP.",
    fails: "Does not work: the relay's UDP port is blocked from here." },
  { id: "turn-tcp", title: "TURN over TCP",
    works: "Works: calls can go through the server's relay over TCP, for networks that block UDP.",
    fails: "Does not work: the relay's TCP port is blocked from here." },
  { id: "turn-tls", title: "TURN over TLS",
    works: "Works: calls can go through the server's relay over TLS, which looks like web traffic to firewalls.",
    fails: "Does not work: the relay's TLS port is blocked from here." },
];

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

// Resolves with whether a candidate of `type` was gathered (or, for "srflx", whether the
// STUN server answered without error: a browser drops a reflexive candidate equal to a host one).
function gather(config, type) {
  return new Promise((resolve) => {
    const pc = new RTCPeerConnection(config);
    let failed = false;
    const done = (result) => { clearTimeout(timer); pc.close(); resolve(result); };
    const timer = setTimeout(() => done(false), TIMEOUT_MS);
    pc.onicecandidate = (event) => {
      if (event.candidate && event.candidate.type === type) done(true);
      else if (!event.candidate) done(type === "srflx" && !failed);
    };
    pc.onicecandidateerror = () => { failed = true; };
    pc.createDataChannel("check");
    pc.createOffer().then((offer) => pc.setLocalDescription(offer)).catch(() => done(false));
  });
}

async function servers() {
  const response = await fetch("/api/check", { cache: "no-store" });
  if (!response.ok) throw new Error((await response.text()).trim());
  return response.json();
}

async function run() {
  $("check-again").hidden = true;
  $("check-results").replaceChildren();
  $("check-summary").textContent = "Checking…";
  let offered;
  try {
    offered = await servers();
  } catch (error) {
    $("check-summary").textContent = `The check could not start: ${error.message}`;
    $("check-again").hidden = false;
    return;
  }
  const tries = [];
  for (const path of PATHS) {
    let attempt = null;
    if (path.id === "udp") {
      if (offered.stun) attempt = gather({ iceServers: [{ urls: offered.stun }] }, "srflx");
    } else {
      const server = offered.turn.find((s) => `turn-${s.transport}` === path.id);
      if (server) {
        attempt = gather({ iceServers: [{ urls: server.urls, username: server.username, credential: server.credential }],
                           iceTransportPolicy: "relay" }, "relay");
      }
    }
    if (!attempt) {
      // Not tried is not failed: say why, and leave the verdict to what was tried.
      const why = path.id === "udp"
        ? "Not tried here: this test asks the server's TURN server, which is not running ([turn] is off). A call tries this way itself."
        : "Not tried: this server does not offer it.";
      show(path, "unavailable", why);
      continue;
    }
    show(path, "checking", "checking…");
    tries.push(attempt.then((ok) => { show(path, ok ? "works" : "fails", ok ? path.works : path.fails); return ok; }));
  }
  const results = await Promise.all(tries);
  const working = results.filter(Boolean).length;
  let verdict = `Done: ${working} of ${results.length} ways work. Calls will use the best one that works.`;
  if (results.length === 0) {
    verdict = "Nothing could be tried from this page: the server runs no TURN server. Calls send their sound and video "
      + "straight to the server over UDP; if a call stays on \u201cconnecting\u201d, this network blocks that, and the "
      + "server's administrator can turn on [turn] for such networks.";
  } else if (working === 0) {
    verdict = "None of the ways tried works from this network. Try another network, or ask its administrator to allow the ports above.";
  }
  $("check-summary").textContent = verdict;
  $("check-summary").dataset.done = "1";
  $("check-again").hidden = false;
}

$("check-again").addEventListener("click", run);
run();
