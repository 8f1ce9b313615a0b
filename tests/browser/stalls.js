// What the adaptive-bitrate pages (abr.html, dash.html) report besides their
// player's own events: how long playback stalled ("waiting" until "playing"),
// each time, and the stall going on now (window.stalledNow()).
function watchStalls(audio, report) {
  let waitingSince = null;
  report.stalls = [];
  audio.addEventListener("waiting", () => { waitingSince = performance.now(); });
  audio.addEventListener("playing", () => {
    if (waitingSince !== null) report.stalls.push((performance.now() - waitingSince) / 1000);
    waitingSince = null;
  });
  window.stalledNow = () => waitingSince === null ? 0 : (performance.now() - waitingSince) / 1000;
}
