// The script-tag way to embed GoCast's player:
//
//   <script src="https://radio.example.com/embed/-/embed.js" data-mount="/live"
//           data-size="mini" data-theme="dark" data-color="ff6600" async></script>
//
// puts the player's iframe where the script tag is, from the server the
// script came from.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) {
    return;
  }
  var origin = new URL(script.src, location.href).origin;
  var data = script.dataset;
  var mount = "/" + (data.mount || "/live").replace(/^\/+/, "");
  var mini = data.size === "mini";
  var query = new URLSearchParams();
  ["theme", "color", "autoplay", "listeners", "token"].forEach(function (name) {
    if (data[name]) {
      query.set(name, data[name]);
    }
  });
  var frame = document.createElement("iframe");
  frame.src = origin + "/embed" + encodeURI(mount) + (mini ? "/mini" : "") +
      (query.toString() ? "?" + query.toString() : "");
  frame.title = data.title || "Radio player";
  frame.width = data.width || (mini ? "100%" : "400");
  frame.height = data.height || (mini ? "60" : "150");
  frame.style.border = "0";
  frame.style.maxWidth = "100%";
  frame.allow = "autoplay";
  script.parentNode.insertBefore(frame, script.nextSibling);
}());
