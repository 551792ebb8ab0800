// The join screen before joining: the camera preview, the microphone level, the device pickers, and
// "join muted" / "join with the camera off". It works on the stream the call will send, changing its
// tracks in place, so what is picked here is what the others get.
import { meterLevel } from "./level.js";
import { notice } from "./ui.js";

const $ = (id) => document.getElementById(id);

// Fills `select` with the devices of `kind` ("videoinput" or "audioinput"), the one in use selected;
// a picker with nothing to pick from is disabled.
export function fillDevices(select, devices, kind, currentId) {
  const noun = kind === "videoinput" ? "Camera" : "Microphone";
  select.replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) => {
    const option = new Option(d.label || `${noun} ${i + 1}`, d.deviceId);
    option.selected = d.deviceId === currentId;
    return option;
  }));
  select.disabled = select.options.length < 2;
}

export function currentDevice(stream, kind) {
  return stream?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
}

// Replaces `stream`'s `kind` track by one from `deviceId`; returns the new track (the old one is stopped).
export async function switchDevice(stream, kind, deviceId) {
  const fresh = await navigator.mediaDevices.getUserMedia(
    kind === "video" ? { video: { deviceId: { exact: deviceId }, width: 1280, height: 720 } } : { audio: { deviceId: { exact: deviceId } } });
  const track = fresh.getTracks()[0];
  for (const old of stream.getTracks().filter((t) => t.kind === kind)) { stream.removeTrack(old); old.stop(); }
  stream.addTrack(track);
  return track;
}

export class PreJoin {
  constructor(stream) {
    this.stream = stream;
    this.stopMeter = () => {};
    this.muted = $("join-muted");
    this.cameraOff = $("join-camera-off");
    this.muted.addEventListener("change", () => this.apply());
    this.cameraOff.addEventListener("change", () => this.apply());
    if (!stream) {
      // Nothing to preview, meter or pick: the person joins to watch.
      document.querySelector(".preview-box").hidden = true;
      this.muted.closest(".checks").hidden = true;
      return;
    }
    $("preview").srcObject = stream;
    $("preview").play?.().catch(() => {});
    this.startMeter();
    this.apply();
    this.listDevices();
    $("join-camera").addEventListener("change", (event) => this.pick("video", event.target.value));
    $("join-mic").addEventListener("change", (event) => this.pick("audio", event.target.value));
  }

  get choices() { return { micMuted: this.muted.checked, cameraOff: this.cameraOff.checked }; }

  // The preview shows what joining would send: nothing from a camera that is off, no level from a muted microphone.
  apply() {
    if (!this.stream) return;
    for (const track of this.stream.getVideoTracks()) track.enabled = !this.cameraOff.checked;
    for (const track of this.stream.getAudioTracks()) track.enabled = !this.muted.checked;
    $("preview-off").hidden = !this.cameraOff.checked && this.stream.getVideoTracks().length > 0;
  }

  startMeter() {
    this.stopMeter();
    this.stopMeter = meterLevel(this.stream, $("mic-level"));
  }

  async listDevices() {
    if (!navigator.mediaDevices?.enumerateDevices) return;
    let devices;
    try { devices = await navigator.mediaDevices.enumerateDevices(); } catch { return; }
    fillDevices($("join-camera"), devices, "videoinput", currentDevice(this.stream, "video"));
    fillDevices($("join-mic"), devices, "audioinput", currentDevice(this.stream, "audio"));
    $("join-devices").hidden = false;
  }

  async pick(kind, deviceId) {
    try {
      await switchDevice(this.stream, kind, deviceId);
    } catch (error) {
      notice(`Could not switch ${kind === "video" ? "camera" : "microphone"}: ${error.message}`, { error: true });
      this.listDevices();  // the picker shows the device still in use
      return;
    }
    $("preview").srcObject = this.stream;
    this.apply();
    if (kind === "audio") this.startMeter();
  }

  // A new stream (the camera and microphone started again after leaving), previewed and metered.
  setStream(stream) {
    this.stopMeter();
    this.stream = stream;
    $("preview").srcObject = stream;
    document.querySelector(".preview-box").hidden = !stream;
    this.muted.closest(".checks").hidden = !stream;
  }

  // Joined: the meter's audio graph is no longer needed.
  done() { this.stopMeter(); this.stopMeter = () => {}; }

  // Back on the join screen (the call ended, or a rejoin was refused): it shows the state the call had.
  again({ micMuted, cameraOff }) {
    this.muted.checked = micMuted;
    this.cameraOff.checked = cameraOff;
    if (!this.stream) return;
    this.apply();
    this.startMeter();
  }
}
