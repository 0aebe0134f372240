//! A WHIP publisher for pages under test: the script that sends a page's `MediaStream` to a
//! `/whip/{room}` endpoint the way an encoder such as OBS does (sendonly transceivers, ICE
//! gathering awaited, one `POST` of the offer with a bearer token, the answer applied). It
//! never checks what the server does with the media; tests do that from the receiving side.

/// The script; `MAKE_STREAM`, `TOKEN` and `URL` are filled in by [`publish_script`].
const TEMPLATE: &str = r#"
return (async () => {
  const stream = await (async () => { MAKE_STREAM })();
  const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) {
    pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
  const res = await fetch(URL, { method: 'POST', body: pc.localDescription.sdp,
    headers: { 'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + TOKEN } });
  const body = await res.text();
  const out = { status: res.status, location: res.headers.get('Location'),
    contentType: res.headers.get('Content-Type'), body };
  if (res.status !== 201) return out;
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  window.peer = pc;
  return out;
})();
"#;

/// The script (for [`crate::browser::eval`]) that publishes the stream `make_stream` returns
/// (JavaScript statements ending in `return` of a `MediaStream`; they may `await`) to `url`
/// (absolute, or a path on the page's origin) with `token`. It resolves to the response's
/// `{status, location, contentType, body}`, and keeps the connection in `window.peer`.
pub fn publish_script(make_stream: &str, token: &str, url: &str) -> String {
    let literal = |s: &str| serde_json::Value::from(s).to_string();
    TEMPLATE
        .replace("TOKEN", &literal(token))
        .replace("URL", &literal(url))
        .replace("MAKE_STREAM", make_stream)
}
