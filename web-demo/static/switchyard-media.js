/**
 * Switchyard media helpers: receive statistics of the subscriber PC (which remote participant each
 * receiver carries) and the video codec preference of the publisher's offer. It never changes a
 * connection or sends a message: switchyard.js calls it.
 */

/**
 * Receive statistics of the subscriber PC, one entry per inbound RTP stream:
 * `[{participantId, identity, kind, framesDecoded, packetsReceived, bytesReceived}]`.
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
    const entry = {
      participantId,
      identity: client.participants.get(participantId)?.identity ?? null,
      kind,
      framesDecoded: 0,
      packetsReceived: 0,
      bytesReceived: 0,
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
