// Connection quality grading of the page (videoroomd/web/static/js/quality.js).
import assert from "node:assert/strict";
import { test } from "node:test";
import { pageModule } from "./page_module.mjs";

const { grade, inboundGrade, outboundGrade, worst } = await pageModule("quality.js");

test("a clean connection is good; loss, jitter, delay or a low frame rate make it worse", () => {
  assert.equal(grade({ loss: 0, jitter: 0.005, rtt: 0.02, fps: 30 }), "good");
  assert.equal(grade({ loss: 0.05 }), "fair");
  assert.equal(grade({ loss: 0.2 }), "poor");
  assert.equal(grade({ jitter: 0.05 }), "fair");
  assert.equal(grade({ rtt: 0.8 }), "poor");
  assert.equal(grade({ fps: 12 }), "fair");
  assert.equal(grade({ fps: 3 }), "poor");
  assert.equal(grade({}), "good");
});

test("received tracks are graded on what changed between two samples", () => {
  const a = { kind: "video", packetsReceived: 1000, packetsLost: 10, jitter: 0.004, framesPerSecond: 25 };
  assert.equal(inboundGrade(a, { ...a, packetsReceived: 1100, packetsLost: 10 }), "good");
  // 10 lost long ago do not count; 30 lost of the last 130 do
  assert.equal(inboundGrade(a, { ...a, packetsReceived: 1100, packetsLost: 40 }), "poor");
  assert.equal(inboundGrade(null, { ...a }), "good");
  // a camera that is off sends a frame a second: that is not a bad connection
  const still = { ...a, packetsReceived: 1010, framesPerSecond: 1 };
  assert.equal(inboundGrade(a, still), "poor");
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
  assert.equal(outboundGrade(undefined), null);
  assert.equal(worst(["good", null, "fair"]), "fair");
  assert.equal(worst(["poor", "good"]), "poor");
  assert.equal(worst([null, undefined]), null);
});
