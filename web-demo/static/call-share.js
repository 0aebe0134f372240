// Switchyard call page: the "Share screen" button (#share-screen). A click asks the browser for a
// screen (client.shareScreen(), i.e. getDisplayMedia with its sound if offered); while a share
// runs the button reads "Stop sharing" and the local tile shows a "Sharing screen" badge. It
// follows the client's `screenShare` events, so a share started by a script, or ended by the
// browser's own "Stop sharing", shows too. It never publishes or negotiates itself: switchyard.js
// does.

import { $, ICONS, showBanner, toast } from './call-ui.js';

const canCapture = () => !!navigator.mediaDevices?.getDisplayMedia;

/** @param {import('./switchyard.js').SwitchyardClient} client */
export function initShare(client) {
  const btn = $('share-screen');
  render(false);
  btn.onclick = async () => {
    if (client.screenTrack) return client.stopScreen();
    btn.disabled = true;
    try {
      await client.shareScreen();
    } catch (err) {
      // Closing the browser's picker is a choice, not an error.
      if (err.name !== 'NotAllowedError' && err.name !== 'AbortError') {
        showBanner(`Could not share the screen: ${err.message}`, 'error');
      }
    } finally {
      render(!!client.screenTrack);
    }
  };
  client.addEventListener('screenShare', ({ detail }) => {
    render(detail.active);
    toast(detail.active ? 'You are sharing your screen' : 'Screen sharing stopped');
  });
}

function render(active) {
  const btn = $('share-screen');
  btn.innerHTML = `${active ? ICONS.screenOff : ICONS.screen}<span>${active ? 'Stop sharing' : 'Share screen'}</span>`;
  btn.setAttribute('aria-pressed', String(active));
  btn.classList.toggle('sharing', active);
  btn.disabled = !active && !canCapture();
  btn.title = canCapture() || active ? '' : 'This browser cannot share its screen';
  $('local-tile').classList.toggle('sharing', active);
}
