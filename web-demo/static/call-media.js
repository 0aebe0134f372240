// Switchyard call page: getting the camera and microphone (1280x720 ideal, for the three simulcast
// layers), and explaining what went wrong when the browser refuses them. It never publishes
// anything: call.js hands the stream it resolves with to the client.

import { closeOverlay, escapeHtml, openOverlay, showBanner } from './call-ui.js';

/** What the camera is asked for: 720p when it can (the full simulcast layer), less otherwise. */
export const CAMERA = { width: { ideal: 1280 }, height: { ideal: 720 } };

/** Camera and microphone, or what the user chose instead (audio only, or null: watch only). */
export async function getLocalMedia() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return mediaProblem(
      'Camera unavailable',
      'This browser only allows camera and microphone access on secure pages (https:// or http://localhost). Open the call over https, or continue without camera.',
    );
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video: CAMERA });
  } catch (err) {
    const [title, text] = describeMediaError(err);
    return mediaProblem(title, text);
  }
}

function describeMediaError(err) {
  switch (err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return [
        'Camera and microphone are blocked',
        'Allow them in your browser’s site settings (click the icon left of the address bar, set Camera and Microphone to “Allow”), then try again — or join without camera.',
      ];
    case 'NotFoundError':
    case 'OverconstrainedError':
      return ['No camera or microphone found', 'Plug one in and try again, or join without camera.'];
    case 'NotReadableError':
    case 'AbortError':
      return [
        'Camera is busy',
        'Another application (or browser tab) is using your camera or microphone. Close it and try again, or join without camera.',
      ];
    default:
      return ['Camera unavailable', `${err.name}: ${err.message}. Try again, or join without camera.`];
  }
}

/** Explain the problem; resolve with a stream (retry / audio only) or null (no devices). */
function mediaProblem(title, text) {
  return new Promise((resolve) => {
    const card = openOverlay(`
      <h2>${escapeHtml(title)}</h2>
      <p>${escapeHtml(text)}</p>
      <div class="actions">
        <button class="btn" data-act="retry">Try again</button>
        <button class="btn primary" data-act="nocam">Join without camera</button>
      </div>`);
    card.querySelector('[data-act=retry]').onclick = async () => {
      closeOverlay();
      resolve(await getLocalMedia());
    };
    card.querySelector('[data-act=nocam]').onclick = async () => {
      closeOverlay();
      let stream = null;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        showBanner('Joined without camera. Others can hear you but not see you.', 'info');
      } catch {
        showBanner('Joined without camera or microphone: you can watch and listen only.', 'info');
      }
      resolve(stream);
    };
  });
}
