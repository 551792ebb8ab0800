// The camera, microphone and screen a person gives the page, and what to tell them when the browser refuses.

export async function localMedia() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return { stream: null, problem: "This page cannot use a camera here: browsers allow it on https:// addresses and on localhost only." };
  }
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720 } }) };
  } catch (error) {
    if (error.name === "NotAllowedError" || error.name === "SecurityError") {
      return { stream: null, problem: "Camera and microphone access was denied. Allow them in your browser's site settings to be seen and heard — you can still join and watch." };
    }
    if (error.name === "NotFoundError") return { stream: null, problem: "No camera or microphone was found. You can still join and watch." };
    return { stream: null, problem: `Your camera or microphone could not be started (${error.message}). You can still join and watch.` };
  }
}

// What to tell someone whose screen could not be shared (getDisplayMedia refused).
export function screenRefusal(error) {
  switch (error?.name) {
    case "NotAllowedError":
      return "The screen is not shared: the picker was cancelled, or the browser or system does not allow this page to share the screen.";
    case "NotFoundError":
      return "The screen is not shared: there was no screen or window to share.";
    case "NotReadableError":
    case "AbortError":
      return "The screen is not shared: it could not be captured (another application or the system may be holding it).";
    default:
      return `The screen is not shared: this browser could not share it (${error?.message || error?.name || error}).`;
  }
}

