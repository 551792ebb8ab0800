// Recording on the page: the join screen says when a room records, a red "Recording" mark on
// every page while it runs, and the Record button for whoever has the room's recording password.
// The server decides; the page asks (custom media event "recording") and shows what it is told
// (recordingStarted / recordingStopped / recordingRefused). The chat lines come from the server.

const $ = (id) => document.getElementById(id);

// The join screen, from /api/rooms: what a person should know before joining.
export function showJoinRecording(room) {
  const line = $("join-recording");
  if (!line) return;
  const mode = room?.recording;
  line.hidden = mode !== "always" && mode !== "manual";
  line.textContent = mode === "always"
    ? "This room records its calls: what you say and show here is recorded."
    : "Calls in this room may be recorded; everyone sees a red Recording mark while they are.";
}

export class RecordingControl {
  // `mode`: the room's recording ("off", "manual", "always"); `send(event)` sends a media event.
  constructor(mode, notice) {
    this.mode = mode || "off";
    this.notice = notice;
    this.running = false;
    this.send = null;
    this.mark = $("recording-mark");
    this.button = $("record-button");
    this.button.hidden = this.mode !== "manual";
    this.button.addEventListener("click", () => this.ask());
  }

  // A call (new on each rejoin): what it is told of the recording, and where requests go.
  wire(call) {
    this.send = (event) => call.send(event);
    this.show(false);
    call.addEventListener("recording", ({ detail: { type, data } }) => {
      if (type === "recordingStarted") this.show(true);
      else if (type === "recordingStopped") this.show(false);
      else if (type === "recordingRefused") this.notice(`Recording: ${data?.reason || "refused"}`, { error: true });
    });
  }

  show(running) {
    this.running = running;
    this.mark.hidden = !running;
    this.button.querySelector(".label").textContent = running ? "Stop recording" : "Record";
    this.button.setAttribute("aria-pressed", String(running));
  }

  ask() {
    if (!this.send) return;
    const password = window.prompt(this.running ? "Recording password, to stop the recording:" : "Recording password, to start recording:");
    if (password === null) return;
    const action = this.running ? "stop" : "start";
    this.send({ type: "custom", data: { type: "recording", data: { action, password } } });
  }
}
