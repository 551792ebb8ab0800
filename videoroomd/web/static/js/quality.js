// Connection quality from WebRTC statistics (getStats), graded good / fair / poor, with what the
// network does in words. Only the network counts: packets lost, jitter, a simulcast layer held down
// for want of bandwidth. A busy computer's low frame rate or a long round trip on a fine network is
// not a bad connection, and is not shown as one. Pure: no DOM, no peer connection.

export const GRADES = ["good", "fair", "poor"];

// Limits between the grades: packet loss as a fraction, jitter in seconds. Past the "fair" limit a
// call is noticeably worse; past "poor", hard to follow.
const LIMITS = {
  fair: { loss: 0.02, jitter: 0.03 },
  poor: { loss: 0.1, jitter: 0.1 },
};

function past(limits, { loss, jitter }) {
  return (loss != null && loss > limits.loss) || (jitter != null && jitter > limits.jitter);
}

// One grade from what was measured; fields left out (undefined or null) are not judged, and nothing
// but loss and jitter is (a frame rate or a round-trip time given is ignored).
export function grade({ loss, jitter } = {}) {
  if (past(LIMITS.poor, { loss, jitter })) return "poor";
  if (past(LIMITS.fair, { loss, jitter })) return "fair";
  return "good";
}

// {grade, why}: the grade, and what is wrong in words ("" when good): the loss first, then the jitter.
export function report({ loss, jitter } = {}) {
  const g = grade({ loss, jitter });
  if (g === "good") return { grade: g, why: "" };
  const lossy = past(LIMITS.fair, { loss });
  const why = lossy ? `${Math.round(loss * 100) || "<1"} % of packets lost` : `jitter ${Math.round(jitter * 1000)} ms`;
  return { grade: g, why };
}

// The report of a received track between two samples of its "inbound-rtp" statistics (`before` may
// be null for the first). A moving video that delivered nothing since the last sample is poor (its
// packets stopped); otherwise, with nothing arrived or lost in between, returns null (nothing to
// judge: audio pauses in silence, a camera that is off sends little).
export function inboundReport(before, after, { still = false } = {}) {
  if (!after) return null;
  const received = (after.packetsReceived ?? 0) - (before?.packetsReceived ?? 0);
  const lost = Math.max(0, (after.packetsLost ?? 0) - (before?.packetsLost ?? 0));
  if (received + lost <= 0) {
    return before && after.kind === "video" && !still ? { grade: "poor", why: "no video arrives" } : null;
  }
  return report({ loss: lost / (received + lost), jitter: after.jitter });
}

export function inboundGrade(before, after, options) {
  return inboundReport(before, after, options)?.grade ?? null;
}

// The report of a sent track from the receiver's reports about it ("remote-inbound-rtp").
export function outboundReport(remote) {
  if (!remote) return null;
  return report({ loss: remote.fractionLost, jitter: remote.jitter });
}

export function outboundGrade(remote) {
  return outboundReport(remote)?.grade ?? null;
}

const LAYERS = ["l", "m", "h"];

// A simulcast track whose server sends a lower layer than the tile asked for because the
// bandwidth to us does not carry more: fair, "lower quality: not enough bandwidth". Else null.
export function layerReport({ simulcast = false, encoding = null, reason = null, wanted = null } = {}) {
  if (!simulcast || !encoding || !wanted || reason !== "low_bandwidth") return null;
  if (LAYERS.indexOf(encoding) >= LAYERS.indexOf(wanted)) return null;
  return { grade: "fair", why: "lower quality: not enough bandwidth" };
}

// The worst of several reports (a person's audio, video and layer); null when none is known.
export function worstReport(reports) {
  let result = null;
  for (const r of reports) {
    if (r && (result === null || GRADES.indexOf(r.grade) > GRADES.indexOf(result.grade))) result = r;
  }
  return result;
}

// The worst of several grades; null when none is known.
export function worst(grades) {
  return worstReport(grades.map((g) => (g ? { grade: g } : null)))?.grade ?? null;
}

// Reports shown only once they last: a problem is shown when two samples in a row find one (a
// moment's burst on a busy machine is not a bad network); a good sample clears it at once.
export class SteadyReports {
  constructor() { this.last = new Map(); }  // id -> the grade of its last sample

  judge(id, found) {
    const before = this.last.get(id);
    this.last.set(id, found?.grade ?? null);
    if (!found || found.grade === "good" || (before && before !== "good")) return found;
    return { grade: "good", why: "" };
  }
}
