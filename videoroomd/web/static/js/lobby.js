// The room list at "/": each configured room (how full, whether it needs a password), and a form
// for any room by name where the server opens rooms on demand.
import { icon } from "./icons.js";
import { show } from "./ui.js";

const $ = (id) => document.getElementById(id);
export const NAME_KEY = "videoroomd.name";

export function rememberedName(params) {
  return params.get("name") || localStorage.getItem(NAME_KEY) || "";
}

export async function fetchRooms() {
  try {
    const response = await fetch("/api/rooms", { cache: "no-store" });
    return await response.json();
  } catch {
    return { rooms: [], dynamic_rooms: false, failed: true };
  }
}

export async function lobby(params) {
  show("lobby");
  document.title = "videoroomd";
  const nameInput = $("lobby-name");
  nameInput.value = rememberedName(params);
  const { rooms, dynamic_rooms: dynamic } = await fetchRooms();
  const list = $("room-list");
  list.replaceChildren();
  const link = (name) => `/room/${encodeURIComponent(name)}${nameInput.value ? `?name=${encodeURIComponent(nameInput.value)}` : ""}`;
  for (const room of rooms) {
    const item = document.createElement("li");
    const a = document.createElement("a");
    a.href = link(room.name);
    a.dataset.room = room.name;
    const title = document.createElement("span");
    title.className = "room-name";
    title.textContent = room.name;
    if (room.password) title.append(icon("lock", "lock"));
    const count = document.createElement("span");
    count.className = "muted";
    count.textContent = `${room.people} / ${room.max_peers}`;
    a.setAttribute("aria-label", `${room.name}: ${room.people} of ${room.max_peers} people${room.password ? ", needs a password" : ""}`);
    a.append(title, count);
    item.append(a);
    list.append(item);
  }
  $("lobby-empty").hidden = rooms.length > 0 || dynamic;
  $("lobby-custom").hidden = !dynamic;
  nameInput.addEventListener("input", () => {
    localStorage.setItem(NAME_KEY, nameInput.value);
    for (const a of list.querySelectorAll("a")) a.href = link(a.dataset.room);
  });
  $("lobby-custom").addEventListener("submit", (event) => {
    event.preventDefault();
    location.href = link($("lobby-room").value);
  });
}

