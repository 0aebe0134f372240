/**
 * Switchyard media helpers: receive statistics of the subscriber PC (which remote participant each
 * receiver carries), the video codec preference of the publisher's offer, and reading an SDP's
 * media sections (mid, msid, direction). It never changes a connection or sends a message:
 * switchyard.js and its publish/remote modules call it.
 */

/**
 * Receive statistics of the subscriber PC, one entry per inbound RTP stream:
 * `[{participantId, identity, kind, trackId, source, framesDecoded, packetsReceived,
 * bytesReceived, frameWidth, frameHeight, framesPerSecond, freezeCount, totalFreezesDuration,
 * keyFramesDecoded}]` (`trackId`: the server's track id, or null while unknown).
 * Receivers whose track no longer belongs to a remote participant are left out.
 */
export async function receiveStats(client) {
  const pc = client.subscriberPc;
  if (!pc) return [];
  const out = [];
  for (const receiver of pc.getReceivers()) {
    const participantId = ownerOf(client, receiver);
    if (!participantId) continue;
    const kind = receiver.track.kind;
    const trackId = client.remoteTrackId(receiver.track);
    const entry = {
      participantId,
      identity: client.participants.get(participantId)?.identity ?? null,
      kind,
      trackId,
      source: client.participants.get(participantId)?.tracks.find((t) => t.id === trackId)?.source ?? null,
      framesDecoded: 0,
      packetsReceived: 0,
      bytesReceived: 0,
      // Video only: what the page shows (size, rate) and how often it stalled.
      frameWidth: 0,
      frameHeight: 0,
      framesPerSecond: 0,
      freezeCount: 0,
      totalFreezesDuration: 0,
      keyFramesDecoded: 0,
    };
    let report;
    try {
      report = await receiver.getStats();
    } catch {
      continue; // PC closed meanwhile
    }
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      entry.framesDecoded += s.framesDecoded ?? 0;
      entry.packetsReceived += s.packetsReceived ?? 0;
      entry.bytesReceived += s.bytesReceived ?? 0;
      entry.frameWidth = s.frameWidth ?? entry.frameWidth;
      entry.frameHeight = s.frameHeight ?? entry.frameHeight;
      entry.framesPerSecond = s.framesPerSecond ?? entry.framesPerSecond;
      entry.freezeCount += s.freezeCount ?? 0;
      entry.totalFreezesDuration += s.totalFreezesDuration ?? 0;
      entry.keyFramesDecoded += s.keyFramesDecoded ?? 0;
    });
    out.push(entry);
  }
  return out;
}

/** Which participant a subscriber receiver currently carries, or null. */
function ownerOf(client, receiver) {
  const id = client._receiverOwner.get(receiver);
  if (id && client._remoteStreams.get(id)?.getTracks().includes(receiver.track)) return id;
  // The server may have reused this m-line for someone else, or removed its track.
  for (const [id, stream] of client._remoteStreams) {
    if (stream.getTracks().includes(receiver.track)) return id;
  }
  return null;
}

/**
 * Puts the codecs of one name (`h264`, `vp8`, ...) first in a video transceiver's preferences,
 * so the offer leads with them. A browser without that codec keeps its own order.
 */
export function preferCodec(transceiver, name) {
  const caps = globalThis.RTCRtpReceiver?.getCapabilities?.('video');
  if (!caps || typeof transceiver.setCodecPreferences !== 'function') return;
  const wanted = `video/${name}`;
  const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  if (!first.length) return;
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== wanted);
  transceiver.setCodecPreferences([...first, ...rest]);
}

/**
 * The media sections of an SDP by mid: `Map<mid, {kind, streamId, trackId, direction}>`, where
 * `streamId`/`trackId` come from `a=msid` (or an `a=ssrc:… msid:` line; null when absent) and
 * `direction` is `inactive` for a rejected (port 0) section. Port 0 with `a=bundle-only` is not
 * a rejection: Firefox writes every m-section it adds in a renegotiating offer that way
 * (RFC 8843 §6), e.g. a screen shared beside the camera.
 */
export function mediaSections(sdp) {
  const out = new Map();
  for (const section of String(sdp || '').split(/\r?\n(?=m=)/).slice(1)) {
    const lines = section.split(/\r?\n/);
    const mid = lines.find((l) => l.startsWith('a=mid:'))?.slice(6).trim();
    if (!mid) continue;
    const [media, port] = lines[0].slice(2).split(' ');
    const dir = lines.find((l) => /^a=(sendrecv|sendonly|recvonly|inactive)\s*$/.test(l))?.slice(2).trim();
    let msid = lines.find((l) => l.startsWith('a=msid:'))?.slice(7).trim().split(/\s+/);
    if (!msid) {
      const m = section.match(/^a=ssrc:\d+ msid:(\S+) (\S+)/m);
      if (m) msid = [m[1], m[2]];
    }
    const rejected = port === '0' && !lines.some((l) => /^a=bundle-only\s*$/.test(l));
    out.set(mid, {
      kind: media,
      streamId: msid?.[0] ?? null,
      trackId: msid?.[1] ?? null,
      direction: rejected ? 'inactive' : dir || 'sendrecv',
    });
  }
  return out;
}
