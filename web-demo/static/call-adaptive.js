// Switchyard call page: adaptive video. For every remote video tile it tells the server, through
// `client.setTrackSettings` (the `trackSettings` message), whether that video is visible and how
// large it is in device pixels (CSS size × devicePixelRatio): when the tile appears, after a
// resize (ResizeObserver, debounced 200 ms), when it is scrolled away or hidden
// (IntersectionObserver: a tile or video with `display: none` does not intersect; the tile's
// "hide video" collapse), and when the tab goes to the background (all invisible). The server
// then sends no layer larger than needed and nothing for what nobody sees.
// It never changes the page or the tiles; it only reads their geometry.

const RESIZE_DEBOUNCE_MS = 200;

export class AdaptiveVideo {
  /** @param {import('./switchyard.js').SwitchyardClient} client */
  constructor(client) {
    this.client = client;
    /** video element -> {trackId, tile, intersecting (null until first told), width, height, timer} */
    this._watched = new Map();
    this._io = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const w = this._watched.get(entry.target);
        if (!w) continue;
        w.intersecting = entry.isIntersecting;
        this._report(entry.target);
      }
    });
    this._ro = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const w = this._watched.get(entry.target);
        if (!w) continue;
        clearTimeout(w.timer);
        w.timer = setTimeout(() => this._report(entry.target), RESIZE_DEBOUNCE_MS);
      }
    });
    document.addEventListener('visibilitychange', () => this.refreshAll());
  }

  /**
   * Reports `video` (inside the tile element `tile`) as server track `trackId` from now on;
   * a null `trackId` stops watching it.
   */
  watch(video, tile, trackId) {
    if (!trackId) return this.unwatch(video);
    const w = this._watched.get(video);
    if (w) {
      if (w.trackId === trackId) return;
      w.trackId = trackId; // the tile shows another track now: report it at once
      return this._report(video);
    }
    this._watched.set(video, { trackId, tile, intersecting: null, width: 0, height: 0, timer: null });
    this._io.observe(video); // its first callback reports the new tile
    this._ro.observe(video);
  }

  unwatch(video) {
    const w = this._watched.get(video);
    if (!w) return;
    clearTimeout(w.timer);
    this._io.unobserve(video);
    this._ro.unobserve(video);
    this._watched.delete(video);
  }

  /** Reports `video` again now (its tile was collapsed or expanded). */
  refresh(video) {
    if (this._watched.has(video)) this._report(video);
  }

  refreshAll() {
    for (const video of this._watched.keys()) this._report(video);
  }

  /** What the page asked for each watched track: [{trackId, visible, width, height}]. */
  list() {
    const settings = this.client.trackSettings;
    return [...this._watched.values()].map((w) => settings.get(w.trackId) || { trackId: w.trackId });
  }

  _report(video) {
    const w = this._watched.get(video);
    if (!w || w.intersecting === null) return;
    clearTimeout(w.timer);
    w.timer = null;
    const rect = video.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const width = Math.round(rect.width * dpr);
    const height = Math.round(rect.height * dpr);
    // Hidden tiles keep their last real size: the server needs it again when they come back.
    if (width > 0 && height > 0) Object.assign(w, { width, height });
    const visible =
      w.intersecting &&
      width > 0 &&
      height > 0 &&
      document.visibilityState !== 'hidden' &&
      !w.tile.classList.contains('collapsed') &&
      video.isConnected;
    try {
      this.client.setTrackSettings(w.trackId, { visible, width: w.width, height: w.height });
    } catch (err) {
      console.warn('switchyard: trackSettings not sent', err);
    }
  }
}
