// GoCast's embeddable player (served at /embed/<mount> and /embed/<mount>/mini).
//
// Playback takes the best transport the browser has: hls.js over Media
// Source Extensions, else native HLS (Safari, iOS), else the ICY stream in
// the <audio> element; a mount without HLS plays its ICY stream. A dropped
// connection is retried with backoff (1, 2, 4... up to 30 s) while the
// listener wants to hear. Now-playing comes live over the mount's
// WebSocket in metadata-only mode (/ws/<mount>?format=metadata), which is
// not counted as a listener.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("gocast-player-config").textContent);
  var root = document.documentElement;
  var audio = document.getElementById("audio");
  var playButton = document.getElementById("play");
  var muteButton = document.getElementById("mute");
  var volume = document.getElementById("volume");
  var title = document.getElementById("title");
  var artist = document.getElementById("artist");
  var state = document.getElementById("state");
  var artwork = document.getElementById("artwork");
  var count = document.getElementById("listeners");

  var hls = null;
  var wanted = false;
  var failures = 0;
  var retryTimer = null;
  var watchdog = null;
  var lastTime = -1;

  if (config.color) {
    root.style.setProperty("--accent", "#" + config.color);
  }

  function withToken(url) {
    if (!config.token) {
      return url;
    }
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "token=" + encodeURIComponent(config.token);
  }

  function setState(name, text) {
    root.setAttribute("data-state", name);
    state.textContent = text;
    var playing = name === "playing" || name === "connecting" || name === "buffering";
    playButton.setAttribute("aria-pressed", playing ? "true" : "false");
    playButton.setAttribute("aria-label", playing ? "Pause" : "Play");
    playButton.title = playing ? "Pause" : "Play";
  }

  function transport() {
    if (config.hls && window.Hls && window.Hls.isSupported()) {
      return "hls.js";
    }
    if (config.hls && audio.canPlayType("application/vnd.apple.mpegurl")) {
      return "native-hls";
    }
    return "icy";
  }

  function detach() {
    if (hls) {
      hls.destroy();
      hls = null;
    }
    audio.removeAttribute("src");
    audio.load();
  }

  function start() {
    clearTimeout(retryTimer);
    detach();
    var kind = transport();
    root.setAttribute("data-transport", kind);
    setState("connecting", "Connecting…");
    if (kind === "hls.js") {
      hls = new window.Hls({liveSyncDurationCount: 3, manifestLoadingMaxRetry: 4, levelLoadingMaxRetry: 4,
                            fragLoadingMaxRetry: 4});
      hls.on(window.Hls.Events.ERROR, function (event, data) {
        if (!data.fatal) {
          return;
        }
        if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
        } else {
          retryLater();
        }
      });
      hls.loadSource(withToken(config.hls));
      hls.attachMedia(audio);
    } else if (kind === "native-hls") {
      audio.src = withToken(config.hls);
    } else {
      // A new URL each time: a player must not reuse a cached or half-closed response.
      audio.src = withToken(config.stream) + (config.token ? "&" : "?") + "_=" + Date.now();
    }
    var playing = audio.play();
    if (playing && playing.catch) {
      playing.catch(function (error) {
        if (error && error.name === "NotAllowedError") {  // autoplay blocked until the listener asks
          wanted = false;
          detach();
          setState("paused", "Press play");
        }
      });
    }
    watch();
  }

  function stop() {
    wanted = false;
    clearTimeout(retryTimer);
    clearInterval(watchdog);
    detach();
    setState("paused", "Paused");
  }

  function retryLater() {
    if (!wanted) {
      return;
    }
    detach();
    failures += 1;
    var delay = Math.min(Math.pow(2, failures - 1), 30);
    setState("retrying", "Reconnecting in " + delay + " s…");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(start, delay * 1000);
  }

  // A stream that stops moving (a dead connection the browser has not noticed) is started again.
  function watch() {
    clearInterval(watchdog);
    lastTime = -1;
    watchdog = setInterval(function () {
      if (!wanted || audio.paused) {
        return;
      }
      if (audio.currentTime === lastTime) {
        retryLater();
      }
      lastTime = audio.currentTime;
    }, 15000);
  }

  playButton.addEventListener("click", function () {
    if (wanted) {
      stop();
    } else {
      wanted = true;
      failures = 0;
      start();
    }
  });

  audio.addEventListener("playing", function () {
    failures = 0;
    setState("playing", "Live");
  });
  audio.addEventListener("waiting", function () {
    if (wanted) {
      setState("buffering", "Buffering…");
    }
  });
  audio.addEventListener("error", function () {
    if (wanted && !hls) {
      retryLater();
    }
  });
  audio.addEventListener("ended", function () {
    retryLater();  // an ICY stream ends when its connection does
  });

  // Volume: remembered for the next visit; the mute button keeps the level.
  function showVolume() {
    var muted = audio.muted || audio.volume === 0;
    muteButton.setAttribute("aria-pressed", muted ? "true" : "false");
    muteButton.setAttribute("aria-label", muted ? "Unmute" : "Mute");
    muteButton.title = muted ? "Unmute" : "Mute";
    volume.value = String(Math.round((audio.muted ? 0 : audio.volume) * 100));
    volume.setAttribute("aria-valuetext", volume.value + "%");
  }
  try {
    var saved = window.localStorage.getItem("gocast-volume");
    if (saved !== null && !isNaN(parseFloat(saved))) {
      audio.volume = Math.min(1, Math.max(0, parseFloat(saved)));
    }
  } catch (e) { /* storage may be off in an iframe */ }
  volume.addEventListener("input", function () {
    audio.muted = false;
    audio.volume = Number(volume.value) / 100;
    try {
      window.localStorage.setItem("gocast-volume", String(audio.volume));
    } catch (e) { /* not kept */ }
    showVolume();
  });
  muteButton.addEventListener("click", function () {
    audio.muted = !audio.muted;
    showVolume();
  });
  showVolume();

  // Space and K play or pause, M mutes, anywhere in the player but a control that uses those keys.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey || (target && target.tagName === "INPUT")) {
      return;
    }
    var key = event.key.toLowerCase();
    if ((key === " " && target === document.body) || key === "k") {
      event.preventDefault();
      playButton.click();
    } else if (key === "m") {
      muteButton.click();
    }
  });

  // Now playing, live.
  function showMetadata(message) {
    title.textContent = message.title || message.song || config.name;
    artist.textContent = message.artist || "";
    if (message.artwork) {
      artwork.style.backgroundImage = "url(\"" + String(message.artwork).replace(/["\\\n]/g, "") + "\")";
      artwork.setAttribute("data-art", "true");
    } else {
      artwork.style.backgroundImage = "";
      artwork.removeAttribute("data-art");
    }
    if (message.song || message.title) {
      document.title = (message.song || message.title) + " · " + config.name;
    }
  }

  var metadataFailures = 0;
  function followMetadata() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(withToken(scheme + location.host + config.ws + "?format=metadata"));
    socket.onmessage = function (event) {
      metadataFailures = 0;
      var message = JSON.parse(event.data);
      if (message.type === "metadata") {
        showMetadata(message);
      }
    };
    socket.onclose = function () {
      metadataFailures += 1;
      setTimeout(followMetadata, Math.min(Math.pow(2, metadataFailures - 1), 30) * 1000);
    };
  }
  followMetadata();

  // The listener count, when the page asked for it (public figures from /status-json.xsl).
  function countListeners() {
    fetch(config.status, {cache: "no-store"}).then(function (response) {
      return response.json();
    }).then(function (status) {
      var sources = status.icestats.source || [];
      sources = Array.isArray(sources) ? sources : [sources];
      for (var i = 0; i < sources.length; i++) {
        var url = sources[i].listenurl || "";
        if (url.slice(url.length - config.mount.length) === config.mount) {
          var n = sources[i].listeners || 0;
          count.textContent = n + (n === 1 ? " listener" : " listeners");
          return;
        }
      }
      count.textContent = "";
    }).catch(function () { /* next time */ });
  }
  if (config.listeners) {
    countListeners();
    setInterval(countListeners, 15000);
  }

  setState("paused", "Press play");
  if (config.autoplay) {
    wanted = true;
    start();
  }
}());
