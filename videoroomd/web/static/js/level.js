// A microphone level meter: the loudness of `stream`'s audio, shown on a <meter>, for checking the
// microphone before joining. Browsers hold an AudioContext suspended until the person interacts with
// the page; the meter starts moving at the first click or key then.

const INTERVAL_MS = 100;
const GAIN = 4;  // speech at a normal distance is an RMS of about 0.05-0.2: show it well up the scale

// Starts metering; returns a function that stops it and frees the audio graph.
export function meterLevel(stream, meter) {
  const Context = window.AudioContext || window.webkitAudioContext;
  const track = stream?.getAudioTracks()[0];
  if (!Context || !track) { meter.value = 0; return () => {}; }
  let context;
  try {
    context = new Context();
  } catch {
    return () => {};  // no audio output device here: the meter stays empty, joining still works
  }
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  const source = context.createMediaStreamSource(new MediaStream([track]));
  source.connect(analyser);  // not to the speakers: hearing oneself would echo
  const samples = new Float32Array(analyser.fftSize);
  const resume = () => context.resume().catch(() => {});
  resume();
  for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, resume, { once: true });
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const sample of samples) sum += sample * sample;
    const rms = Math.sqrt(sum / samples.length);
    meter.value = track.enabled && track.readyState === "live" ? Math.min(1, rms * GAIN) : 0;
  }, INTERVAL_MS);
  return () => {
    clearInterval(timer);
    for (const type of ["pointerdown", "keydown"]) document.removeEventListener(type, resume);
    source.disconnect();
    context.close().catch(() => {});
    meter.value = 0;
  };
}
