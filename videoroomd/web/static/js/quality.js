// Connection quality from WebRTC statistics (getStats), graded good / fair / poor. Pure: no DOM, no
// peer connection, so it can be checked on its own.

export const GRADES = ["good", "fair", "poor"];

// Limits between the grades: packet loss as a fraction, jitter and round-trip time in seconds,
// frames per second for video. Past the "fair" limit a call is noticeably worse; past "poor", hard to follow.
const LIMITS = {
  fair: { loss: 0.02, jitter: 0.03, rtt: 0.25, fps: 15 },
  poor: { loss: 0.1, jitter: 0.1, rtt: 0.5, fps: 8 },
};

// One grade from what was measured; fields left out (undefined or null) are not judged.
export function grade({ loss, jitter, rtt, fps } = {}) {
  const past = (limits) => (loss != null && loss > limits.loss) || (jitter != null && jitter > limits.jitter)
    || (rtt != null && rtt > limits.rtt) || (fps != null && fps < limits.fps);
  if (past(LIMITS.poor)) return "poor";
  if (past(LIMITS.fair)) return "fair";
  return "good";
}

// The grade of a received track between two samples of its "inbound-rtp" statistics (`before` may be
// null for the first). `still`: the sender is not sending moving pictures (camera off, or audio), so
// frames per second say nothing. A moving video that delivered nothing since the last sample is poor
// (its packets stopped); otherwise, with nothing arrived or lost in between, returns null (nothing to judge:
// audio may pause in silence).
export function inboundGrade(before, after, { still = false } = {}) {
  if (!after) return null;
  const received = (after.packetsReceived ?? 0) - (before?.packetsReceived ?? 0);
  const lost = Math.max(0, (after.packetsLost ?? 0) - (before?.packetsLost ?? 0));
  if (received + lost <= 0) return before && after.kind === "video" && !still ? "poor" : null;
  return grade({
    loss: lost / (received + lost),
    jitter: after.jitter,
    fps: still || after.kind !== "video" ? undefined : after.framesPerSecond ?? 0,
  });
}

// The grade of a sent track from the receiver's reports about it ("remote-inbound-rtp").
export function outboundGrade(report) {
  if (!report) return null;
  return grade({ loss: report.fractionLost, jitter: report.jitter, rtt: report.roundTripTime });
}

// The worst of several grades (a person's audio and video); null when none is known.
export function worst(grades) {
  let result = null;
  for (const g of grades) if (g && (result === null || GRADES.indexOf(g) > GRADES.indexOf(result))) result = g;
  return result;
}
