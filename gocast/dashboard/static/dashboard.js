// GoCast dashboard: logs in, reads the live stats stream (WebSocket), draws
// history and rate charts with uPlot, and sends operator actions. No build step.
"use strict";

(function () {
  var $ = function (id) { return document.getElementById(id); };
  var base = location.pathname.replace(/\/dashboard\/?.*$/, "");   // the admin root, e.g. /admin
  var csrf = null;
  var socket = null;
  var mounts = {};            // path -> latest figures
  var lastSent = null;        // previous total bytes sent, for the rate
  var rates = [[], []];       // uPlot data: times, bits per second
  var ratesChart = null;
  var historyChart = null;
  var range = "1h";
  var openListeners = {};     // mount path -> true when its listener list is shown
  var MAX_RATE_POINTS = 300;
  var MAX_EVENT_LINES = 200;

  function store(name, value) {
    try {
      if (value === undefined) { return JSON.parse(localStorage.getItem("gocast." + name)); }
      localStorage.setItem("gocast." + name, JSON.stringify(value));
    } catch (e) { return null; }
    return null;
  }

  function text(node, value) { node.textContent = value == null ? "" : String(value); }

  function element(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) {
      if (key === "text") { text(node, attributes[key]); } else { node.setAttribute(key, attributes[key]); }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600),
        m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m ? m + "m " + s + "s" : s + "s";
  }

  function bits(value) {
    if (value == null) { return "–"; }
    if (value >= 1e6) { return (value / 1e6).toFixed(1) + " Mbit/s"; }
    if (value >= 1e3) { return (value / 1e3).toFixed(0) + " kbit/s"; }
    return value + " bit/s";
  }

  function request(method, path, body) {
    var options = {method: method, credentials: "same-origin", headers: {}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (csrf && method !== "GET") { options.headers["X-CSRF-Token"] = csrf; }
    return fetch(base + "/dashboard/" + path, options).then(function (response) {
      return response.json().then(function (data) { return {status: response.status, data: data}; });
    });
  }

  // Theme

  function setTheme(theme) {
    document.documentElement.setAttribute("data-theme", theme);
    store("theme", theme);
    text($("theme"), theme === "dark" ? "Light theme" : "Dark theme");
    drawHistory();
  }
  $("theme").addEventListener("click", function () {
    setTheme(document.documentElement.getAttribute("data-theme") === "dark" ? "light" : "dark");
  });
  text($("theme"), document.documentElement.getAttribute("data-theme") === "dark" ? "Light theme" : "Dark theme");

  // Widgets: each can be hidden and moved; the layout is kept in localStorage.

  function widgets() { return Array.prototype.slice.call(document.querySelectorAll(".widget")); }

  function saveLayout() {
    store("layout", {order: widgets().map(function (w) { return w.dataset.widget; }),
                     hidden: widgets().filter(function (w) { return w.hidden && w.dataset.absent !== "true"; })
                                      .map(function (w) { return w.dataset.widget; })});
    fillWidgetMenu();
  }

  function fillWidgetMenu() {
    var menu = $("widget-menu");
    while (menu.options.length > 1) { menu.remove(1); }
    widgets().filter(function (w) { return w.hidden && w.dataset.absent !== "true"; }).forEach(function (w) {
      menu.appendChild(element("option", {value: w.dataset.widget, text: "Show " + w.dataset.title}));
    });
  }

  function setUpWidgets() {
    var container = $("widgets");
    widgets().forEach(function (widget) {
      var head = element("div", {"class": "widget-head"}, [
        element("h2", {text: widget.dataset.title}),
        element("button", {type: "button", "data-move": "-1", title: "Move up", "aria-label": "Move up", text: "↑"}),
        element("button", {type: "button", "data-move": "1", title: "Move down", "aria-label": "Move down",
                           text: "↓"}),
        element("button", {type: "button", "data-hide": "1", title: "Hide", "aria-label": "Hide", text: "×"})]);
      widget.insertBefore(head, widget.firstChild);
      head.addEventListener("click", function (event) {
        var button = event.target.closest("button");
        if (!button) { return; }
        if (button.dataset.hide) { widget.hidden = true; }
        if (button.dataset.move === "-1" && widget.previousElementSibling) {
          container.insertBefore(widget, widget.previousElementSibling);
        }
        if (button.dataset.move === "1" && widget.nextElementSibling) {
          container.insertBefore(widget.nextElementSibling, widget);
        }
        saveLayout();
      });
    });
    var layout = store("layout");
    if (layout) {
      (layout.order || []).forEach(function (name) {
        var widget = container.querySelector('[data-widget="' + name + '"]');
        if (widget) { container.appendChild(widget); }
      });
      (layout.hidden || []).forEach(function (name) {
        var widget = container.querySelector('[data-widget="' + name + '"]');
        if (widget) { widget.hidden = true; }
      });
    }
    $("widget-menu").addEventListener("change", function (event) {
      var widget = container.querySelector('[data-widget="' + event.target.value + '"]');
      if (widget) { widget.hidden = false; saveLayout(); }
      event.target.value = "";
    });
    fillWidgetMenu();
  }

  // Live figures

  function render(server) {
    text($("total-listeners"), server.listeners);
    text($("total-sources"), server.sources);
    text($("uptime"), duration(server.uptime));
    var rows = $("mount-rows");
    while (rows.firstChild) { rows.removeChild(rows.firstChild); }
    var paths = Object.keys(mounts).sort();
    paths.forEach(function (path) {
      var m = mounts[path];
      var toggle = element("button", {type: "button", text: openListeners[path] ? "Hide listeners" : "Listeners"});
      toggle.addEventListener("click", function () { openListeners[path] = !openListeners[path]; render(server); });
      var kill = element("button", {type: "button", text: "Kill source"});
      kill.disabled = !m.live;
      kill.addEventListener("click", function () { act({action: "kill_source", mount: path}); });
      rows.appendChild(element("tr", {"data-mount": path}, [
        element("td", {text: path}),
        element("td", {}, [element("span", {"class": "dot" + (m.live ? " on" : ""),
                                             title: m.live ? "live" : "no source"})].concat(
          m.relay ? [element("span", {"class": "relay", title: "relayed from " + m.relay,
                                      text: "relay ← " + m.relay.replace(/^https?:\/\//, "")})] : []).concat(
          m.transcoded_from ? [element("span", {"class": "relay", title: "transcoded from " + m.transcoded_from,
                                                text: "transcoded ← " + m.transcoded_from + " · " +
                                                      (m.content_type || "").replace(/^audio\//, "") +
                                                      (m.bitrate ? " " + m.bitrate + "k" : "")})] : [])),
        element("td", {"class": "num listeners", text: m.listeners}),
        element("td", {"class": "now-playing"},
                (m.artwork && m.artwork.charAt(0) === "/"  // this server's cover (the page may load no other)
                  ? [element("img", {"class": "cover", src: m.artwork, alt: "", width: "32", height: "32"})] : [])
                  .concat([element("span", {text: m.song || "–",
                                            title: m.album ? (m.song || "") + " · " + m.album : ""})])),
        element("td", {"class": "num", text: bits(m.send_bps)}),
        element("td", {}, [toggle, kill])]));
      if (openListeners[path]) {
        var cell = element("td", {colspan: "6", text: "…"});
        rows.appendChild(element("tr", {"class": "listeners-row"}, [cell]));
        showListeners(path, cell);
      }
    });
    ["metadata-mount", "move-from", "move-to"].forEach(function (id) {
      var select = $(id), chosen = select.value;
      while (select.firstChild) { select.removeChild(select.firstChild); }
      paths.forEach(function (path) { select.appendChild(element("option", {value: path, text: path})); });
      if (paths.indexOf(chosen) >= 0) { select.value = chosen; }
    });
    renderCountries();
    renderCluster(server.cluster);
  }

  function renderCluster(cluster) {
    var widget = $("cluster-widget"), absent = String(!cluster);
    if (widget.dataset.absent !== absent) {  // shown once the server is in a cluster, unless hidden by the user
      widget.dataset.absent = absent;
      widget.hidden = !cluster || ((store("layout") || {}).hidden || []).indexOf("cluster") >= 0;
      fillWidgetMenu();
    }
    if (!cluster) { return; }
    text($("cluster-listeners"), cluster.listeners);
    var rows = $("node-rows");
    while (rows.firstChild) { rows.removeChild(rows.firstChild); }
    cluster.nodes.forEach(function (n) {
      var name = n.id + (n.leader ? " ★" : "") + (n.self ? " (this node)" : "");
      rows.appendChild(element("tr", {"data-node": n.id}, [
        element("td", {text: name, title: n.leader ? "the cluster's leader" : ""}),
        element("td", {text: n.region || "–"}),
        element("td", {text: n.role}),
        element("td", {"class": "num", text: n.listeners}),
        element("td", {"class": "num", text: Math.round(n.load * 100) + "%"})]));
    });
  }

  function showListeners(path, cell) {
    request("GET", "listeners?mount=" + encodeURIComponent(path)).then(function (answer) {
      while (cell.firstChild) { cell.removeChild(cell.firstChild); }
      var list = element("ul");
      (answer.data.listeners || []).forEach(function (l) {
        var kick = element("button", {type: "button", text: "Kick"});
        kick.addEventListener("click", function () { act({action: "kick", mount: path, id: l.id}); });
        list.appendChild(element("li", {}, [document.createTextNode(
          "#" + l.id + " " + l.ip + (l.listener_id ? " (" + l.listener_id + ")" : "") + " · " +
          (l.country || "unknown") + " · " + duration(l.duration) + " · " + (l.user_agent || "") + " "), kick]));
      });
      if (!list.firstChild) { list.appendChild(element("li", {text: "nobody"})); }
      cell.appendChild(list);
    });
  }

  function renderCountries() {
    var totals = {};
    Object.keys(mounts).forEach(function (path) {
      var countries = mounts[path].listeners_by_country || {};
      Object.keys(countries).forEach(function (c) { totals[c] = (totals[c] || 0) + countries[c]; });
    });
    var list = $("countries");
    while (list.firstChild) { list.removeChild(list.firstChild); }
    Object.keys(totals).sort(function (a, b) { return totals[b] - totals[a]; }).slice(0, 20).forEach(function (c) {
      list.appendChild(element("li", {}, [element("span", {text: c}), element("span", {text: totals[c]})]));
    });
    $("geo-hint").hidden = Object.keys(totals).some(function (c) { return c !== "unknown"; });
  }

  function noteRate(server, updated) {
    var sent = 0;
    Object.keys(mounts).forEach(function (path) { sent += mounts[path].bytes_sent || 0; });
    var now = server.time;
    if (lastSent && now > lastSent.time && updated) {
      var bps = Math.max(0, (sent - lastSent.bytes) * 8 / (now - lastSent.time));
      rates[0].push(now);
      rates[1].push(bps);
      if (rates[0].length > MAX_RATE_POINTS) { rates[0].shift(); rates[1].shift(); }
      if (ratesChart) { ratesChart.setData(rates); }
    }
    if (updated) { lastSent = {time: now, bytes: sent}; }
  }

  function perMountRates(updates, time) {
    updates.forEach(function (m) {
      var before = mounts[m.path];
      if (before && before.at && time > before.at) {
        m.send_bps = Math.max(0, Math.round((m.bytes_sent - before.bytes_sent) * 8 / (time - before.at)));
      } else if (before) {
        m.send_bps = before.send_bps;
      }
      m.at = time;
      mounts[m.path] = m;
    });
  }

  function handle(message) {
    if (message.type === "snapshot") {
      mounts = {};
      perMountRates(message.mounts, message.server.time);
      lastSent = null;
      noteRate(message.server, true);
    } else if (message.type === "delta") {
      perMountRates(message.mounts, message.server.time);
      (message.removed || []).forEach(function (path) { delete mounts[path]; });
      noteRate(message.server, message.mounts.length === Object.keys(mounts).length);
      (message.events || []).forEach(showEvent);
    }
    render(message.server);
  }

  var EVENT_TEXT = {
    "source.connect": "Source connected to {mount}",
    "source.disconnect": "Source left {mount}",
    "source.metadata": "{mount}: {song}",
    "source.fallback": "{mount}: listeners moved to {destination}",
    "listener.connect": "Listener joined {mount} ({ip})",
    "listener.disconnect": "Listener left {mount} ({ip})",
    "listener.kicked": "Listener {id} kicked from {mount}",
    "listener.denied": "Listener refused on {mount}: {reason}",
    "stats.milestone": "{mount} reached {milestone} listeners",
    "config.reloaded": "Configuration reloaded"
  };

  function describe(event) {
    var template = EVENT_TEXT[event.event] || event.event + " {mount}";
    var fields = Object.assign({mount: event.mount || ""}, event.data);
    return template.replace(/\{(\w+)\}/g, function (_, name) { return fields[name] == null ? "" : fields[name]; });
  }

  function showEvent(event) {
    var line = describe(event);
    var list = $("events");
    var when = new Date(event.time * 1000).toLocaleTimeString();
    list.insertBefore(element("li", {"data-event": event.event}, [element("time", {text: when}),
                                                                   document.createTextNode(line)]),
                      list.firstChild);
    while (list.children.length > MAX_EVENT_LINES) { list.removeChild(list.lastChild); }
    if (event.event === "source.connect" || event.event === "source.disconnect") { toast(line); }
  }

  function toast(message) {
    var node = element("div", {"class": "toast", role: "status", text: message});
    $("toasts").appendChild(node);
    setTimeout(function () { node.remove(); }, 6000);
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + base + "/ws/stats");
    socket.onopen = function () {
      $("status").className = "status live";
      text($("status"), "live");
      socket.send(JSON.stringify({listener_events: $("listener-events").checked}));
    };
    socket.onmessage = function (event) { handle(JSON.parse(event.data)); };
    socket.onclose = function () {
      $("status").className = "status down";
      text($("status"), "reconnecting…");
      socket = null;
      setTimeout(function () { if (csrf) { connect(); } }, 2000);
    };
  }

  $("listener-events").checked = !!store("listenerEvents");
  $("listener-events").addEventListener("change", function (event) {
    store("listenerEvents", event.target.checked);
    if (socket && socket.readyState === 1) { socket.send(JSON.stringify({listener_events: event.target.checked})); }
  });

  // Charts

  function chartColors() {
    var style = getComputedStyle(document.documentElement);
    return {line: style.getPropertyValue("--chart").trim(), text: style.getPropertyValue("--muted").trim(),
            grid: style.getPropertyValue("--line").trim()};
  }

  function axes(colors, format) {
    return [{stroke: colors.text, grid: {stroke: colors.grid}},
            {stroke: colors.text, grid: {stroke: colors.grid}, size: 95, values: format}];
  }

  function makeRatesChart() {
    if (typeof uPlot === "undefined") { text($("rates-chart"), "Charts need uPlot: run ./dev setup."); return; }
    var colors = chartColors();
    var node = $("rates-chart");
    if (ratesChart) { ratesChart.destroy(); }
    ratesChart = new uPlot({width: node.clientWidth || 600, height: 220,
                            series: [{}, {label: "sent", stroke: colors.line, fill: colors.line + "33",
                                          value: function (u, v) { return bits(v == null ? null : Math.round(v)); }}],
                            axes: axes(colors, function (u, values) {
                              return values.map(function (v) { return bits(Math.round(v)); });
                            })}, rates, node);
  }

  var historyData = null;

  function loadHistory() {
    $("export-csv").href = "history?range=" + range + "&format=csv";
    $("export-json").href = "history?range=" + range + "&format=json";
    request("GET", "history?range=" + range).then(function (answer) {
      if (answer.status !== 200) { return; }
      var totals = {};
      answer.data.points.forEach(function (p) { totals[p.ts] = (totals[p.ts] || 0) + p.listeners; });
      var times = Object.keys(totals).map(Number).sort(function (a, b) { return a - b; });
      historyData = [times, times.map(function (t) { return totals[t]; })];
      drawHistory();
    });
  }

  function drawHistory() {
    if (!historyData || typeof uPlot === "undefined") { return; }
    var colors = chartColors();
    var node = $("history-chart");
    if (historyChart) { historyChart.destroy(); }
    historyChart = new uPlot({width: node.clientWidth || 600, height: 220,
                              series: [{}, {label: "listeners", stroke: colors.line, fill: colors.line + "33"}],
                              axes: axes(colors)}, historyData, node);
    makeRatesChart();
  }

  Array.prototype.forEach.call(document.querySelectorAll(".range"), function (button) {
    button.addEventListener("click", function () {
      range = button.dataset.range;
      Array.prototype.forEach.call(document.querySelectorAll(".range"), function (b) {
        b.classList.toggle("active", b === button);
      });
      loadHistory();
    });
  });
  window.addEventListener("resize", function () {
    [[ratesChart, "rates-chart"], [historyChart, "history-chart"]].forEach(function (pair) {
      if (pair[0]) { pair[0].setSize({width: $(pair[1]).clientWidth, height: 220}); }
    });
  });

  // Actions

  function act(body) {
    return request("POST", "action", body).then(function (answer) {
      text($("action-result"), answer.status === 200 ? "Done: " + JSON.stringify(answer.data) : answer.data.error);
      return answer;
    });
  }

  $("metadata-form").addEventListener("submit", function (event) {
    event.preventDefault();
    act({action: "metadata", mount: $("metadata-mount").value, song: $("metadata-song").value});
  });
  $("move-form").addEventListener("submit", function (event) {
    event.preventDefault();
    act({action: "move", mount: $("move-from").value, destination: $("move-to").value});
  });

  // Recordings: the newest of every mount, the ones being written marked; closed ones link to a download

  function size(bytes) {
    return bytes >= 1048576 ? (bytes / 1048576).toFixed(1) + " MB" : Math.round(bytes / 1024) + " KB";
  }

  function loadRecordings() {
    request("GET", "recordings").then(function (answer) {
      if (answer.status !== 200) { return; }
      var rows = $("recording-rows");
      while (rows.firstChild) { rows.removeChild(rows.firstChild); }
      var found = answer.data.recordings || [];
      found.forEach(function (r) {
        var file = r.recording
          ? element("span", {"class": "recording-now", text: "● recording " + r.id})
          : element("a", {href: "recording?id=" + encodeURIComponent(r.id), download: r.id, text: r.id});
        rows.appendChild(element("tr", {"data-recording": r.id}, [
          element("td", {text: r.mount}), element("td", {}, [file]),
          element("td", {"class": "num", text: size(r.size)}),
          element("td", {text: new Date(r.modified * 1000).toLocaleString()})]));
      });
      $("recordings-hint").hidden = found.length > 0;
    });
  }

  // Logging in and out

  function start(token) {
    csrf = token;
    $("login").hidden = true;
    $("widgets").hidden = false;
    $("logout").hidden = false;
    connect();
    makeRatesChart();
    loadHistory();
    setInterval(loadHistory, 60000);
    loadRecordings();
    setInterval(loadRecordings, 5000);
  }

  $("login").addEventListener("submit", function (event) {
    event.preventDefault();
    request("POST", "login", {user: $("login-user").value, password: $("login-password").value})
      .then(function (answer) {
        if (answer.status === 200) { start(answer.data.csrf); } else { text($("login-error"), answer.data.error); }
      });
  });
  $("logout").addEventListener("click", function () {
    request("POST", "logout").then(function () { csrf = null; location.reload(); });
  });

  setUpWidgets();
  request("GET", "session").then(function (answer) {
    if (answer.status === 200) { start(answer.data.csrf); } else { $("login").hidden = false; }
  });
})();
