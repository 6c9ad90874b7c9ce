// ki2api's status page: charts and the request table from /api/usage and /api/requests, refreshed live.
// No libraries, no network beyond this server; every value from the server is set as text, never as HTML.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("ki2api-config").textContent);
  var S = config.strings;
  var SVG = "http://www.w3.org/2000/svg";
  var PALETTE = ["#7c3aed", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#ec4899", "#64748b", "#84cc16"];
  var params = new URLSearchParams(location.search);
  var theme = params.get("theme");
  if (theme === "dark" || theme === "light") document.documentElement.setAttribute("data-theme", theme);
  var key = config.key || readStoredKey();
  // ?request=<id> opens that request's detail (a link a person can share with themselves, and the tests).
  var state = { usage: null, requests: [], open: Number(params.get("request")) || null, colours: {} };

  function $(id) { return document.getElementById(id); }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, name) { return name in values ? String(values[name]) : ""; });
  }
  function t(name, values) { return fill(S[name] || name, values || {}); }
  function readStoredKey() { try { return localStorage.getItem("ki2api-key"); } catch (e) { return null; } }
  function storeKey(value) { try { localStorage.setItem("ki2api-key", value); } catch (e) { /* private mode */ } }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    return node;
  }
  function number(value, digits) {
    return Number(value || 0).toLocaleString(config.lang === "zh" ? "zh-CN" : "en", { maximumFractionDigits: digits });
  }
  function millis(value) {
    if (value === null || value === undefined) return S.none;
    return value >= 1000 ? t("seconds", { value: number(value / 1000, 2) }) : t("ms", { value: number(value, 0) });
  }
  function isoDay(text) { var p = text.split("-"); return new Date(+p[0], +p[1] - 1, +p[2]); }
  function dateText(day) {
    return fill(config.date, { day: day.getDate(), month_name: config.months[day.getMonth()], year: day.getFullYear() });
  }
  function timeText(iso) {
    var when = new Date(iso);
    var hm = ("0" + when.getHours()).slice(-2) + ":" + ("0" + when.getMinutes()).slice(-2) + ":" + ("0" + when.getSeconds()).slice(-2);
    return when.toDateString() === new Date().toDateString() ? hm : dateText(when) + " " + hm;
  }
  function colour(model) {
    if (!(model in state.colours)) state.colours[model] = PALETTE[Object.keys(state.colours).length % PALETTE.length];
    return state.colours[model];
  }

  function api(path) {
    return fetch(path, { headers: key ? { Authorization: "Bearer " + key } : {}, cache: "no-store" }).then(function (r) {
      if (r.status === 401) throw { unauthorised: true };
      if (!r.ok) throw { status: r.status };
      return r.json();
    });
  }

  // --- charts ------------------------------------------------------------------------------------------
  function chart(target, days, field, digits) {
    var box = $(target);
    var width = 520, height = 180, left = 34, bottom = 22, top = 10;
    var plot = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "data-field": field });
    var max = 0;
    days.forEach(function (d) { max = Math.max(max, field === "credits" ? d.credits : d.requests); });
    plot.appendChild(svg("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: "axis" }));
    if (max <= 0) {
      var empty = svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" });
      empty.textContent = S.chart_empty;
      plot.appendChild(empty);
    }
    var step = (width - left) / days.length;
    var scale = max > 0 ? (height - top - bottom) / max : 0;
    var label = svg("text", { x: left - 4, y: top + 4, "text-anchor": "end" });
    label.textContent = max > 0 ? number(max, digits) : "";
    plot.appendChild(label);
    days.forEach(function (d, i) {
      var y = height - bottom;
      Object.keys(d.by_model).sort().forEach(function (model) {
        var value = d.by_model[model][field];
        if (!value) return;
        var h = Math.max(value * scale, 1);
        y -= h;
        var bar = svg("rect", {
          x: (left + i * step + 1).toFixed(1), y: y.toFixed(1), width: Math.max(step - 2, 1).toFixed(1), height: h.toFixed(1),
          fill: colour(model), "data-field": field, "data-day": d.date, "data-model": model, "data-value": value,
        });
        var tip = svg("title", {});
        tip.textContent = dateText(isoDay(d.date)) + " · " + model + " · " + number(value, digits);
        bar.appendChild(tip);
        plot.appendChild(bar);
      });
      if (i === 0 || i === days.length - 1 || i === Math.floor(days.length / 2)) {
        var anchor = i === 0 ? "start" : i === days.length - 1 ? "end" : "middle";
        var x = i === 0 ? left + i * step : i === days.length - 1 ? left + (i + 1) * step : left + i * step + step / 2;
        var tick = svg("text", { x: x, y: height - 6, "text-anchor": anchor });
        var day = isoDay(d.date);
        tick.textContent = fill(config.lang === "zh" ? "{m}/{d}" : "{d} {mn}", { m: day.getMonth() + 1, d: day.getDate(), mn: config.months[day.getMonth()] });
        plot.appendChild(tick);
      }
    });
    box.replaceChildren(plot);
  }

  function drawUsage(usage) {
    $("recording-off").hidden = usage.recording !== false;
    $("stat-credits").textContent = number(usage.total.credits, 2);
    $("stat-requests").textContent = number(usage.total.requests, 0);
    $("stat-error-rate").textContent = number(usage.error_rate * 100, 1) + "%";
    $("stat-ttfb").textContent = t("ttfb_value", { p50: millis(usage.ttfb_ms.p50), p95: millis(usage.ttfb_ms.p95) });
    Object.keys(usage.by_model).sort().forEach(colour);
    chart("chart-credits", usage.by_day, "credits", 2);
    chart("chart-requests", usage.by_day, "requests", 0);
    var legend = $("legend");
    legend.replaceChildren();
    Object.keys(usage.by_model).sort().forEach(function (model) {
      var item = el("li", { "data-model": model });
      var swatch = el("i");
      swatch.style.background = colour(model);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(model + " · " + number(usage.by_model[model].credits, 2)));
      legend.appendChild(item);
    });
    drawForecast(usage);
  }

  function drawForecast(usage) {
    var target = $("forecast"), overage = $("overage");
    if (!target) return;
    var f = usage.forecast, q = usage.quota;
    var text = "";
    if (f) {
      var resets = f.resets ? dateText(isoDay(f.resets)) : "";
      if (!f.runs_out) text = resets ? t("forecast_idle", { resets: resets }) : "";
      else if (f.lasts_until_reset && resets) text = t("forecast_lasts", { pace: number(f.pace_per_day, 2), resets: resets });
      else if (resets) text = t("forecast_runs_out", { runs_out: dateText(isoDay(f.runs_out)), resets: resets });
      else text = t("forecast_runs_out_no_reset", { runs_out: dateText(isoDay(f.runs_out)) });
    }
    target.textContent = text;
    overage.textContent = q && q.overage === "ENABLED" ? S.overage_enabled : q && q.overage === "DISABLED" ? S.overage_disabled : "";
  }

  // --- requests ---------------------------------------------------------------------------------------
  function options(select, values, labels) {
    var current = select.value;
    select.replaceChildren();
    values.forEach(function (value, i) { select.appendChild(el("option", { value: value }, labels ? labels[i] : value)); });
    if (values.indexOf(current) >= 0) select.value = current;
  }

  function drawFilters() {
    var models = {}, clients = {};
    state.requests.forEach(function (r) { if (r.model) models[r.model] = 1; clients[r.client] = 1; });
    if (state.usage) {
      Object.keys(state.usage.by_model).forEach(function (m) { if (m) models[m] = 1; });
      Object.keys(state.usage.by_client).forEach(function (c) { clients[c] = 1; });
    }
    options($("filter-status"), ["", "ok", "error"], [S.filter_all, S.status_ok, S.status_error]);
    var modelNames = Object.keys(models).sort();
    options($("filter-model"), [""].concat(modelNames), [S.filter_all].concat(modelNames));
    var clientNames = Object.keys(clients).sort();
    options($("filter-client"), [""].concat(clientNames), [S.filter_all].concat(clientNames.map(function (c) { return c || S.unknown_client; })));
  }

  function visible() {
    var status = $("filter-status").value, model = $("filter-model").value, client = $("filter-client").value;
    return state.requests.filter(function (r) {
      return (!status || (status === "ok") === r.ok) && (!model || r.model === model) && (client === "" ? true : r.client === client);
    });
  }

  function drawRequests() {
    var body = $("requests").tBodies[0];
    body.replaceChildren();
    var rows = visible();
    if (!rows.length) {
      var none = el("tr"); none.appendChild(el("td", { colspan: 7 }, S.no_requests)); body.appendChild(none);
    }
    rows.forEach(function (r) {
      var row = el("tr", { "data-id": r.id, "data-status": r.status, tabindex: 0 });
      if (state.open === r.id) row.className = "open";
      row.appendChild(el("td", {}, timeText(r.time)));
      row.appendChild(el("td", {}, r.client || S.unknown_client));
      row.appendChild(el("td", {}, r.model || r.model_requested));
      var badge = el("span", { class: "badge " + (r.ok ? "ok" : "fail") }, String(r.status));
      var cell = el("td"); cell.appendChild(badge); row.appendChild(cell);
      row.appendChild(el("td", { class: "num" }, millis(r.duration_ms)));
      row.appendChild(el("td", { class: "num" }, (r.input_tokens === null ? S.none : number(r.input_tokens, 0)) + " / " + (r.output_tokens === null ? S.none : number(r.output_tokens, 0))));
      row.appendChild(el("td", { class: "num" }, r.credits === null ? S.none : number(r.credits, 3)));
      row.addEventListener("click", function () { state.open = state.open === r.id ? null : r.id; drawRequests(); });
      row.addEventListener("keydown", function (e) { if (e.key === "Enter") row.click(); });
      body.appendChild(row);
    });
    drawDetail();
  }

  function drawDetail() {
    var box = $("detail");
    var r = state.requests.filter(function (x) { return x.id === state.open; })[0];
    box.hidden = !r;
    box.replaceChildren();
    if (!r) return;
    var title = el("h3", {}, t("detail_title", { id: r.id }));
    var close = el("button", { type: "button" }, S.detail_close);
    close.addEventListener("click", function () { state.open = null; drawRequests(); });
    title.appendChild(close);
    box.appendChild(title);
    var list = el("dl");
    function fact(label, value) { list.appendChild(el("dt", {}, label)); list.appendChild(el("dd", {}, value)); }
    fact(S.col_time, timeText(r.time));
    fact(S.detail_api, r.api);
    fact(S.col_client, r.client || S.unknown_client);
    fact(S.detail_model, (r.model_requested || S.none) + " / " + (r.model || S.none));
    fact(S.detail_login, r.login || S.none);
    fact(S.col_status, String(r.status) + (r.error_kind ? " · " + r.error_kind : ""));
    fact(S.detail_timing, millis(r.ttfb_ms) + " / " + millis(r.duration_ms));
    fact(S.col_tokens, (r.input_tokens === null ? S.none : number(r.input_tokens, 0)) + " / " + (r.output_tokens === null ? S.none : number(r.output_tokens, 0)));
    fact(S.detail_context, r.context_percent === null ? S.none : number(r.context_percent, 1) + "%");
    fact(S.col_credits, r.credits === null ? S.none : number(r.credits, 4));
    fact(S.detail_stream, r.stream ? S.yes : S.no);
    box.appendChild(list);
    box.appendChild(el("h2", {}, S.detail_changes));
    if (!r.changes.length) box.appendChild(el("p", { class: "small" }, S.detail_no_changes));
    var changes = el("ul", { id: "detail-changes" });
    r.changes.forEach(function (c) {
      var known = S["change." + c.kind];
      changes.appendChild(el("li", { "data-kind": c.kind }, known ? fill(known, { detail: c.detail }) : t("change.other", c)));
    });
    if (r.changes.length) box.appendChild(changes);
    if (r.error) {
      box.appendChild(el("h2", {}, S.detail_error));
      box.appendChild(el("p", { class: "said", id: "detail-error" }, r.error));
    }
  }

  // --- refreshing ---------------------------------------------------------------------------------------
  function refreshCards() {
    return fetch(location.pathname + "?lang=" + config.lang, { cache: "no-store" }).then(function (r) { return r.text(); }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html");
      var cards = fresh.getElementById("cards"), page = fresh.getElementById("page");
      if (!cards || !page) return;
      var forecast = $("forecast") ? $("forecast").textContent : "", overage = $("overage") ? $("overage").textContent : "";
      $("cards").replaceChildren.apply($("cards"), Array.prototype.slice.call(cards.childNodes));
      $("page").setAttribute("style", page.getAttribute("style"));
      if ($("forecast")) $("forecast").textContent = forecast;
      if ($("overage")) $("overage").textContent = overage;
    });
  }

  function refreshData() {
    return Promise.all([api("/api/usage?days=30"), api("/api/requests?limit=200")]).then(function (answers) {
      state.usage = answers[0];
      state.requests = answers[1].requests;
      $("key-form").hidden = true;
      $("stats").hidden = false;
      drawUsage(state.usage);
      drawFilters();
      drawRequests();
    }, function (problem) {
      if (problem && problem.unauthorised) {
        $("key-form").hidden = false;
        $("key-wrong").hidden = !key;
        $("stats").hidden = true;
        return;
      }
      throw problem;
    });
  }

  function refresh() {
    Promise.all([refreshData(), refreshCards()]).then(function () {
      $("offline").hidden = true;
      $("updated").textContent = t("updated", { time: timeText(new Date().toISOString()) });
    }, function () { $("offline").hidden = false; }).then(function () {
      document.documentElement.setAttribute("data-loaded", "true");
      setTimeout(refresh, config.refresh * 1000);
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-text]"), function (node) { node.textContent = S[node.getAttribute("data-text")]; });
  Array.prototype.forEach.call(document.querySelectorAll("[data-placeholder]"), function (node) { node.placeholder = S[node.getAttribute("data-placeholder")]; });
  ["filter-status", "filter-model", "filter-client"].forEach(function (id) { $(id).addEventListener("change", drawRequests); });
  $("key-form").addEventListener("submit", function (e) {
    e.preventDefault();
    key = $("key-input").value.trim();
    storeKey(key);
    refreshData().catch(function () { $("offline").hidden = false; });
  });
  $("dashboard").hidden = false;
  refresh();
})();
