// One side's WebRTC connection to the server's media relay, shared by the customer's
// call page and the agent's console: our offer out and the relay's answer in, an ICE
// restart when the network changes or drops (the call, its recording and its status go
// on if we are back within the server's grace period), and this side's own connection
// quality from getStats().

// 'disconnected' this long (a short blip often heals by itself) starts an ICE restart.
const RESTART_AFTER_MS = 1000;
// A restart that has not connected by then is tried again.
const RETRY_MS = 4000;
const QUALITY_EVERY_MS = 2000;
// The same thresholds the relay uses for the agent's warning.
const POOR_KBPS = 100;
const POOR_LOSS_PCT = 10;

/** Resolves when the browser has all its candidates (the relay takes no trickle). */
function gathered(pc) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const done = () => pc.iceGatheringState === "complete" && resolve();
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 2000);
  });
}

/**
 * Connects `stream` to the relay and plays the other side in `remote`.
 * `send(sdp)` posts our offer and resolves to the relay's answer SDP.
 * `onState("connecting" | "connected" | "reconnecting")`, `onQuality(q)`.
 */
export async function openCall({ stream, remote, iceServers = [], send, onState = () => {}, onQuality = () => {} }) {
  const pc = new RTCPeerConnection({ iceServers });
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  const incoming = new MediaStream();
  remote.srcObject = incoming;
  pc.ontrack = (event) => incoming.addTrack(event.track);

  let closed = false;
  let restarting = false;
  let timer = null;
  const up = () => ["connected", "completed"].includes(pc.iceConnectionState);

  async function negotiate(options) {
    await pc.setLocalDescription(await pc.createOffer(options));
    await gathered(pc);
    const answer = await send(pc.localDescription.sdp);
    if (!closed) await pc.setRemoteDescription({ type: "answer", sdp: answer });
  }

  async function restart() {
    if (closed || restarting || up()) return;
    restarting = true;
    onState("reconnecting");
    try {
      await negotiate({ iceRestart: true });
    } catch (_) {
      // The server may be out of reach too: the next try comes below.
    }
    restarting = false;
    clearTimeout(timer);
    timer = setTimeout(restart, RETRY_MS);
  }

  pc.addEventListener("iceconnectionstatechange", () => {
    if (closed) return;
    const state = pc.iceConnectionState;
    if (up()) {
      clearTimeout(timer);
      onState("connected");
    } else if (state === "failed") {
      restart();
    } else if (state === "disconnected") {
      onState("reconnecting");
      clearTimeout(timer);
      timer = setTimeout(() => pc.iceConnectionState === "disconnected" && restart(), RESTART_AFTER_MS);
    }
  });

  let last = null;
  const meter = setInterval(async () => {
    if (closed) return;
    const now = await measure(pc, last);
    last = now;
    if (now.ready) onQuality(now);
  }, QUALITY_EVERY_MS);

  onState("connecting");
  await negotiate();
  return {
    pc,
    close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(meter);
      pc.close();
    },
  };
}

/** This side's connection now: round trip, what we send and receive, loss. */
async function measure(pc, last) {
  const report = await pc.getStats();
  const now = { at: performance.now(), sent: 0, received: 0, packets: 0, lost: 0, rttMs: null, fps: null, transport: null };
  let pair = null;
  report.forEach((r) => {
    if (r.type === "transport" && r.selectedCandidatePairId) pair = report.get(r.selectedCandidatePairId);
  });
  report.forEach((r) => {
    if (!pair && r.type === "candidate-pair" && r.nominated && r.state === "succeeded") pair = r;
    if (r.type === "outbound-rtp") now.sent += r.bytesSent || 0;
    if (r.type === "inbound-rtp") {
      now.received += r.bytesReceived || 0;
      now.packets += r.packetsReceived || 0;
      now.lost += Math.max(0, r.packetsLost || 0);
      if (r.kind === "video" && r.framesPerSecond != null) now.fps = Math.round(r.framesPerSecond);
    }
  });
  if (pair) {
    if (pair.currentRoundTripTime != null) now.rttMs = Math.round(pair.currentRoundTripTime * 1000);
    const local = report.get(pair.localCandidateId);
    if (local) now.transport = local.candidateType === "relay" ? "turn" : local.protocol;
  }
  if (!last) return now;
  const seconds = Math.max(0.001, (now.at - last.at) / 1000);
  const packets = now.packets - last.packets;
  const lost = now.lost - last.lost;
  now.ready = true;
  now.upKbps = Math.round(((now.sent - last.sent) * 8) / 1000 / seconds);
  now.downKbps = Math.round(((now.received - last.received) * 8) / 1000 / seconds);
  now.lossPct = packets + lost > 0 ? Math.round((1000 * lost) / (packets + lost)) / 10 : 0;
  now.poor = now.downKbps < POOR_KBPS || now.lossPct > POOR_LOSS_PCT;
  return now;
}
