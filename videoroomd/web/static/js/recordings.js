// The recordings page: the credential (a room and its recording password, or the admin token) kept
// in a cookie that the list, the players and the downloads carry; each recording with its files.
const $ = (id) => document.getElementById(id);
const COOKIE = "videoroomd_recordings";

function remember(room, password) {
  const value = room ? { room, password } : { admin: password };
  const encoded = btoa(unescape(encodeURIComponent(JSON.stringify(value)))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  for (const path of ["/recordings", "/api/recordings"]) {
    document.cookie = `${COOKIE}=${encoded}; path=${path}; SameSite=Strict${location.protocol === "https:" ? "; Secure" : ""}`;
  }
}

function say(text) {
  $("recordings-message").textContent = text;
  $("recordings-message").hidden = !text;
}

function item(recording) {
  const li = document.createElement("li");
  li.className = "recording";
  const title = document.createElement("h2");
  const started = new Date(recording.started * 1000);
  title.textContent = `${recording.room || "?"} · ${started.toLocaleString()}`;
  const facts = document.createElement("p");
  facts.className = "muted";
  facts.textContent = `${recording.participants.length} people · ${(recording.bytes / 1e6).toFixed(1)} MB · started by ${recording.by || "?"}`;
  li.append(title, facts);
  if (!recording.files.length) {
    const wait = document.createElement("p");
    wait.textContent = "Not exported yet.";
    li.append(wait);
  }
  for (const file of recording.files) {
    const video = document.createElement("video");
    video.controls = true;
    video.preload = "metadata";
    video.src = file.url;
    const link = document.createElement("a");
    link.href = file.url;
    link.download = file.name;
    link.textContent = `Download ${file.name} (${(file.bytes / 1e6).toFixed(1)} MB)`;
    li.append(video, link);
  }
  return li;
}

async function show() {
  const response = await fetch("/api/recordings", { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) { say(await response.text()); $("recordings-list").replaceChildren(); return; }
  const { recordings } = await response.json();
  say(recordings.length ? "" : "No recordings yet.");
  $("recordings-list").replaceChildren(...recordings.map(item));
}

$("recordings-login").addEventListener("submit", (event) => {
  event.preventDefault();
  remember($("recordings-room").value.trim(), $("recordings-password").value);
  show();
});
if (document.cookie.includes(`${COOKIE}=`)) show();
