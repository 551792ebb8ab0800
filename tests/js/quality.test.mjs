// Connection quality grading of the page (videoroomd/web/static/js/quality.js).
import assert from "node:assert/strict";
import { test } from "node:test";
import { pageModule } from "./page_module.mjs";

const { SteadyReports, grade, inboundGrade, inboundReport, layerReport, outboundGrade, report, worst, worstReport } = await pageModule("quality.js");

test("a clean connection is good; loss or jitter make it worse, a busy computer's frame rate or a long round trip do not", () => {
  assert.equal(grade({ loss: 0, jitter: 0.005, rtt: 0.02, fps: 30 }), "good");
  assert.equal(grade({ loss: 0.05 }), "fair");
  assert.equal(grade({ loss: 0.2 }), "poor");
  assert.equal(grade({ jitter: 0.05 }), "fair");
  assert.equal(grade({ loss: 0, rtt: 0.8 }), "good");
  assert.equal(grade({ loss: 0, fps: 3 }), "good");
  assert.equal(grade({}), "good");
});

test("a report says what the network does", () => {
  assert.deepEqual(report({ loss: 0, jitter: 0.001 }), { grade: "good", why: "" });
  assert.deepEqual(report({ loss: 0.05, jitter: 0.2 }), { grade: "poor", why: "5 % of packets lost" });
  assert.deepEqual(report({ loss: 0, jitter: 0.045 }), { grade: "fair", why: "jitter 45 ms" });
  const a = { kind: "video", packetsReceived: 1000, packetsLost: 10, jitter: 0.004, framesPerSecond: 25 };
  assert.deepEqual(inboundReport(a, a), { grade: "poor", why: "no video arrives" });
  // a layer held down by the bandwidth is fair; one chosen for the tile's size, or for other reasons, is not
  assert.deepEqual(layerReport({ simulcast: true, encoding: "l", wanted: "h", reason: "low_bandwidth" }),
    { grade: "fair", why: "lower quality: not enough bandwidth" });
  assert.equal(layerReport({ simulcast: true, encoding: "l", wanted: "l", reason: "low_bandwidth" }), null);
  assert.equal(layerReport({ simulcast: true, encoding: "l", wanted: "h", reason: "encoding_inactive" }), null);
  assert.equal(layerReport({ simulcast: false, encoding: null, wanted: "h", reason: null }), null);
  assert.equal(worstReport([null, { grade: "fair", why: "x" }, { grade: "good", why: "" }]).why, "x");
});

test("received tracks are graded on what changed between two samples", () => {
  const a = { kind: "video", packetsReceived: 1000, packetsLost: 10, jitter: 0.004, framesPerSecond: 25 };
  assert.equal(inboundGrade(a, { ...a, packetsReceived: 1100, packetsLost: 10 }), "good");
  // 10 lost long ago do not count; 30 lost of the last 130 do
  assert.equal(inboundGrade(a, { ...a, packetsReceived: 1100, packetsLost: 40 }), "poor");
  assert.equal(inboundGrade(null, { ...a }), "good");
  // a camera that is off, or a busy computer, sends a frame a second: that is not a bad connection
  const still = { ...a, packetsReceived: 1010, framesPerSecond: 1 };
  assert.equal(inboundGrade(a, still), "good");
  assert.equal(inboundGrade(a, still, { still: true }), "good");
  // audio has no frames
  assert.equal(inboundGrade(null, { kind: "audio", packetsReceived: 50, packetsLost: 0, jitter: 0.01 }), "good");
  // a moving video that stopped arriving is poor; a still one, or audio (silence may pause it), says nothing
  assert.equal(inboundGrade(a, a), "poor");
  assert.equal(inboundGrade(a, a, { still: true }), null);
  const voice = { kind: "audio", packetsReceived: 50, packetsLost: 0, jitter: 0.01 };
  assert.equal(inboundGrade(voice, voice), null);
  // no sample yet, or before anything arrived: nothing to say
  assert.equal(inboundGrade(a, null), null);
  assert.equal(inboundGrade(null, { kind: "video", packetsReceived: 0, packetsLost: 0 }), null);
});

test("sent tracks are graded from the other side's reports; a person's grade is the worst of theirs", () => {
  assert.equal(outboundGrade({ fractionLost: 0, roundTripTime: 0.01, jitter: 0.001 }), "good");
  assert.equal(outboundGrade({ fractionLost: 0.04, roundTripTime: 0.01 }), "fair");
  assert.equal(outboundGrade({ fractionLost: 0, roundTripTime: 0.9 }), "good");
  assert.equal(outboundGrade(undefined), null);
  assert.equal(worst(["good", null, "fair"]), "fair");
  assert.equal(worst(["poor", "good"]), "poor");
  assert.equal(worst([null, undefined]), null);
});

test("a problem is shown once two samples in a row find it, and cleared by one good sample", () => {
  const marks = new SteadyReports();
  const lossy = { grade: "fair", why: "3 % of packets lost" };
  assert.deepEqual(marks.judge("a", lossy), { grade: "good", why: "" });
  assert.deepEqual(marks.judge("a", lossy), lossy);
  assert.deepEqual(marks.judge("a", { grade: "good", why: "" }), { grade: "good", why: "" });
  assert.deepEqual(marks.judge("a", lossy), { grade: "good", why: "" });
  assert.equal(marks.judge("b", null), null);
});
