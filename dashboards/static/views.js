// The views. Each `render(ctx)` fetches what it shows and returns its element; `live` names
// the stream events after which it is fetched again (readings patch values in place anyway).

import { get, send } from "./api.js";
import { num, pct, pick, t, when } from "./i18n.js";
import { asStaff, card, chip, deviceLink, dialog, dot, h, live, metricLabel, roomName, statusText } from "./ui.js";

const SEVERITIES = ["critical", "major", "minor", "warning"];
const SEVERITY_TONE = { critical: "bad", major: "bad", minor: "warn", warning: "info" };
const STATUSES = ["open", "assigned", "on_site", "done"];
const TRADES = ["water", "electric", "carpentry", "other"];

function where(state, item) {
  return `${roomName(state, item.room)} · ${state.buildings.get(item.building) ?? item.building}`;
}

function list(items, render, empty) {
  return items.length ? h("ul", { class: "list" }, items.map((x) => h("li", {}, render(x))))
    : h("p", { class: "muted" }, empty);
}

// ------------------------------------------------------------------------------- overview

function comparison(title, c) {
  const digits = c.unit === "m³" ? 2 : 1;
  const values = [["today", c.today], ["yesterday", c.yesterday], ["last_week", c.last_week]];
  const top = Math.max(...values.map(([, v]) => v ?? 0), 1e-9);
  const change = (other) => (c.today == null || !other ? null : c.today / other - 1);
  return h("div", { class: "energy" },
    h("div", { class: "energy-head" }, h("h3", {}, title),
      h("span", { class: "big" }, num(c.today, digits), h("small", {}, ` ${c.unit}`))),
    h("div", { class: "bars" }, values.map(([key, v]) => h("div", { class: `bar-row ${key}` },
      h("span", { class: "bar-label" }, t(`overview.${key}`)),
      h("span", { class: "bar" }, h("span", { style: `width:${((v ?? 0) / top) * 100}%` })),
      h("span", { class: "bar-value" }, `${num(v, digits)} ${c.unit}`),
      key === "today" ? null : h("span", { class: `delta ${(change(v) ?? 0) > 0 ? "up" : "down"}` },
        (change(v) ?? 0) >= 9 ? `×${num(change(v) + 1, 0)}` : pct(change(v)))))),
    h("p", { class: "muted small" }, t("overview.yesterday_total", { v: `${num(c.yesterday_total, digits)} ${c.unit}` })));
}

function lampRow(state, lamp) {
  const tone = { running: "info", ran: "ok", due: "warn", missed: "bad", unknown: "", none: "" }[lamp.status];
  const share = lamp.minutes_required ? Math.min(1, lamp.minutes_run / lamp.minutes_required) : 0;
  return h("div", { class: "row" },
    h("span", { class: "grow" }, deviceLink(state, lamp.device, lamp.name), h("small", { class: "muted" }, ` ${roomName(state, lamp.room)}`)),
    lamp.status === "none" ? null : h("span", { class: "progress", title: t("lamp.minutes", { ran: num(lamp.minutes_run, 0), need: num(lamp.minutes_required, 0) }) },
      h("span", { style: `width:${share * 100}%` })),
    chip(t(`lamp.${lamp.status}`), tone, { dataset: { lamp: lamp.device, status: lamp.status } }));
}

async function overview({ state }) {
  const o = await get("/api/v1/dashboard/overview");
  const day = o.day;
  const dayName = pick(day, "name") || t(day.school_day ? "day.school" : "day.closed");
  const alerts = h("div", { class: "severities" }, SEVERITIES.map((s) => h("a", {
    href: `#/alerts?state=open&severity=${s}`, class: `severity ${o.open_alerts[s] ? SEVERITY_TONE[s] : "quiet"}`,
    dataset: { severity: s },
  }, h("span", { class: "count" }, num(o.open_alerts[s], 0)), h("span", {}, t(`severity.${s}`)))));
  const fridges = h("div", { class: "tiles" }, o.fridges.map((f) => h("a", {
    href: `#/device/${encodeURIComponent(f.device)}`, class: `tile ${f.in_range === false ? "bad" : ""}`,
  },
  h("span", { class: "tile-name" }, dot(f.online), f.name),
  h("span", { class: "big" }, live(state, f.device, f.metric, f.temperature_c)),
  h("small", { class: "muted" }, `${roomName(state, f.room)} · ${t("overview.range", { lo: num(f.min_c), hi: num(f.max_c) })}`),
  f.in_range == null ? null : chip(t(f.in_range ? "fridge.ok" : "fridge.out"), f.in_range ? "ok" : "bad"))));
  return h("div", { class: "grid" },
    h("div", { class: "day-strip wide" }, h("strong", {}, when(day.date, "date")), chip(dayName, day.school_day ? "info" : ""),
      h("small", { class: "muted" }, t("common.updated", { t: when(o.at, "time") }))),
    card(t("overview.alerts"), [alerts, h("p", { class: "muted small" }, t("overview.unacked", { n: num(o.unacknowledged, 0) }))]),
    card(t("overview.energy"), [comparison(t("overview.electricity"), o.electricity), comparison(t("overview.water"), o.water)],
      { class: "span2" }),
    card(t("overview.fridges"), fridges),
    card(t("overview.doors"), list(o.doors_open, (d) => h("div", { class: "row" },
      h("span", { class: "grow" }, deviceLink(state, d.device, d.name), h("small", { class: "muted" }, ` ${where(state, d)}`)),
      d.open_since ? h("small", {}, t("common.since", { t: when(d.open_since, "time") })) : null), t("overview.no_doors"))),
    card(t("overview.lamps"), h("div", {}, o.lamps.map((l) => lampRow(state, l)))),
    card(t("overview.offline"), list(o.offline, (d) => h("div", { class: "row" },
      h("span", { class: "grow" }, deviceLink(state, d.device, d.name), h("small", { class: "muted" }, ` ${where(state, d)}`)),
      h("small", { class: "muted" }, when(d.last_seen))), t("overview.no_offline"))));
}

// -------------------------------------------------------------------------- closing board

async function closing({ state }) {
  const c = await get("/api/v1/dashboard/closing");
  return h("div", { class: "grid" }, c.buildings.map((b) => {
    const lampsOut = b.lamps_on.filter((l) => !l.scheduled).length;
    const todo = b.doors_open.length + b.circuits.length + b.water.length + lampsOut;
    const status = b.closed_up ? chip(t("closing.ok"), "ok") : chip(t("closing.todo", { n: num(todo, 0) }), "bad");
    // Every check shows, ticked when nothing is left: the guard sees what was checked.
    const section = (key, items, render, pending = items.length) => h("div", { class: `check ${pending ? "todo" : "done"}` },
      h("h3", {}, h("span", { class: "mark", "aria-hidden": "true" }, pending ? "✗" : "✓"),
        pending ? t(`${key}.todo`, { n: num(pending, 0) }) : t(`${key}.done`)),
      items.length ? list(items, render, "") : null);
    const row = (item, ...right) => h("div", { class: "row" },
      h("span", { class: "grow" }, deviceLink(state, item.device, item.name), h("small", { class: "muted" }, ` ${roomName(state, item.room)}`)), ...right);
    return card(null, [
      h("div", { class: "closing-head" }, h("h2", {}, b.name), status),
      b.open_now ? h("p", { class: "muted" }, b.closes_at ? t("closing.open", { t: when(b.closes_at, "time") }) : t("closing.open_all_day")) : null,
      section("closing.doors", b.doors_open, (d) => row(d, d.open_since ? h("small", {}, t("common.since", { t: when(d.open_since, "time") })) : null)),
      section("closing.circuits", b.circuits, (x) => row(x, live(state, x.device, x.metric, x.power_w),
        h("small", { class: "muted" }, ` ${t("closing.limit", { v: statusText(state, x.device, x.metric, x.limit_w) })}`))),
      section("closing.water", b.water, (x) => row(x, live(state, x.device, x.metric, x.flow_lpm))),
      section("closing.lamps", b.lamps_on, (x) => row(x, x.scheduled ? chip(t("closing.scheduled"), "info")
        : chip(statusText(state, x.device, x.metric, true), "bad")), lampsOut),
    ], { class: `closing ${b.closed_up ? "good" : "bad"} ${b.open_now ? "open" : ""}`, "data-building": b.id });
  }));
}

// ---------------------------------------------------------------------- buildings & rooms

function deviceTile(state, d, alerting) {
  const kind = state.site.kinds[d.kind];
  // What the kind shows on a tile: link health is left to the device's own page (the dot says online).
  const keys = kind.metrics.filter((m) => m.tile && m.key in d.last_values).map((m) => m.key);
  return h("a", { href: `#/device/${encodeURIComponent(d.id)}`, class: `tile device ${alerting ? "bad" : ""}`, dataset: { device: d.id } },
    h("span", { class: "tile-name" }, dot(d.online), d.name || d.id),
    h("small", { class: "muted" }, pick(kind, "label")),
    h("dl", { class: "values" }, keys.map((k) => [h("dt", {}, metricLabel(state, d.id, k)),
      h("dd", {}, live(state, d.id, k, d.last_values[k]))])));
}

async function buildings({ state }) {
  const [devices, open] = await Promise.all([get("/api/v1/devices"), get("/api/v1/alerts", { open: true, limit: 1000 })]);
  state.devices = new Map(devices.map((d) => [d.id, d]));
  const alerting = new Set(open.map((a) => a.device_id));
  return h("div", { class: "stack" }, state.site.buildings.map((b) => card(b.name, h("div", { class: "rooms" },
    b.rooms.map((r) => {
      const inRoom = devices.filter((d) => d.room === r.id);
      return h("div", { class: "room" }, h("h3", {}, r.name),
        inRoom.length ? h("div", { class: "tiles" }, inRoom.map((d) => deviceTile(state, d, alerting.has(d.id))))
          : h("p", { class: "muted small" }, t("buildings.no_devices")));
    })))));
}

// --------------------------------------------------------------------------------- device

const RANGES = {
  "24h": { hours: 24, gauge: "5m", counter: "1h" },
  "7d": { hours: 168, gauge: "30m", counter: "6h" },
  "30d": { hours: 720, gauge: "2h", counter: "1d" },
};

let echartsLoading = null;
function echarts() {
  echartsLoading ??= new Promise((resolve, reject) => {
    const script = h("script", { src: `${document.body.dataset.static}/vendor/echarts/echarts.min.js` });
    script.onload = () => resolve(window.echarts);
    script.onerror = reject;
    document.head.append(script);
  });
  return echartsLoading;
}

function increases(points) {
  // A counter's use per bucket: the rise of its highest reading from the bucket before.
  return points.map((p, i) => {
    const before = i ? points[i - 1].max : p.min;
    return p.max < before ? p.max : p.max - before;
  });
}

async function drawChart(el, state, device, metric, range) {
  const m = state.site.kinds[device.kind].metrics.find((x) => x.key === metric);
  const counter = m.type === "counter";
  const spec = RANGES[range];
  const start = new Date(Date.now() - spec.hours * 3600_000).toISOString();
  const [[series], lib] = await Promise.all([
    get(`/api/v1/devices/${encodeURIComponent(device.id)}/readings`, { metric, start, step: counter ? spec.counter : spec.gauge }),
    echarts(),
  ]);
  if (!series.points.length) {
    el.replaceChildren(h("p", { class: "muted" }, t("device.no_data")));
    return;
  }
  const chart = lib.getInstanceByDom(el) ?? lib.init(el, null, { renderer: "canvas" });
  const times = series.points.map((p) => when(p.ts, "axis"));
  const unit = m.unit;
  const base = {
    grid: { left: 48, right: 16, top: 32, bottom: 32 },
    tooltip: { trigger: "axis", valueFormatter: (v) => `${num(v, 2)} ${unit}` },
    xAxis: { type: "category", data: times, boundaryGap: counter },
    yAxis: { type: "value", name: unit, scale: !counter, axisLabel: { formatter: (v) => num(v, 2) } },
    animation: false,
  };
  const seriesSpec = counter
    ? [{ type: "bar", name: t("device.per_bucket"), data: increases(series.points), itemStyle: { color: "#1a7f5a" } }]
    : m.type === "state"
      ? [{ type: "line", step: "end", data: series.points.map((p) => p.max), symbol: "none", areaStyle: { opacity: 0.2 } }]
      : [
        { type: "line", data: series.points.map((p) => p.min), lineStyle: { opacity: 0 }, stack: "band", symbol: "none" },
        { type: "line", data: series.points.map((p) => p.max - p.min), lineStyle: { opacity: 0 }, stack: "band", symbol: "none",
          areaStyle: { color: "rgba(26,127,90,0.15)" }, tooltip: { show: false } },
        { type: "line", name: pick(m, "label"), data: series.points.map((p) => p.mean), symbol: "none", lineStyle: { color: "#1a7f5a", width: 2 } },
      ];
  chart.setOption({ ...base, series: seriesSpec }, true);
  chart.resize();
}

function alertRow(state, a, onChange) {
  const ack = a.acked_by == null && a.state !== "cleared"
    ? h("button", { type: "button", class: "ack", dataset: { alert: a.id }, onclick: () => ackDialog(a, onChange) }, t("alerts.ack"))
    : null;
  const history = h("div", { class: "history" });
  return h("article", { class: `alert ${a.severity} ${a.state}`, dataset: { alert: a.id, state: a.state } },
    h("div", { class: "alert-head" },
      chip(t(`severity.${a.severity}`), SEVERITY_TONE[a.severity]),
      h("strong", { class: "grow" }, pick(a, "title")),
      chip(t(`state.${a.state}`), a.state === "active" ? "bad" : a.state === "cleared" ? "ok" : "info", { dataset: { role: "state" } })),
    h("p", {}, pick(a, "detail")),
    h("p", { class: "muted small" },
      deviceLink(state, a.device_id), ` · ${where(state, a)} · ${t("alerts.first", { t: when(a.first) })}`,
      a.count > 1 ? ` · ${t("alerts.count", { n: num(a.count, 0) })}` : "",
      a.cleared_at ? ` · ${t("alerts.cleared", { t: when(a.cleared_at) })}` : ""),
    a.acked_by ? h("p", { class: "small ack-note" }, t("alerts.acked_by", { who: a.acked_by, t: when(a.acked_at) }),
      a.ack_comment ? `: ${a.ack_comment}` : "") : null,
    h("div", { class: "actions" }, ack, h("button", {
      type: "button", class: "secondary", onclick: async () => {
        if (history.childElementCount) { history.replaceChildren(); return; }
        const detail = await get(`/api/v1/alerts/${a.id}`);
        history.replaceChildren(h("ol", {}, detail.history.map((e) => h("li", {},
          `${when(e.at)} · ${t(`transition.${e.action.replace("alert.", "")}`)} · ${e.actor}`,
          e.detail.comment ? `: ${e.detail.comment}` : ""))));
      },
    }, t("alerts.history"))),
    history);
}

function ackDialog(alert, onChange) {
  dialog((close) => {
    const comment = h("textarea", { name: "comment", rows: 3, maxlength: 1000, placeholder: t("alerts.comment_hint") });
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { class: "form" },
      h("h2", {}, t("alerts.ack_title")), h("p", {}, pick(alert, "title")),
      h("label", {}, t("alerts.comment"), comment), error,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, t("common.cancel")),
        h("button", { type: "submit" }, t("alerts.ack"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      close();
      try {
        await asStaff(() => send("POST", `/api/v1/alerts/${alert.id}/ack`, { comment: comment.value }));
        onChange();
      } catch (err) {
        dialog((done) => h("div", { class: "form" }, h("p", { class: "error-text" }, err.detail ?? err.message),
          h("button", { type: "button", onclick: done }, t("common.cancel"))));
      }
    });
    return form;
  });
  document.querySelector("#dialog textarea")?.focus();
}

async function device({ state, arg, params, rerender }) {
  const [d, alerts] = await Promise.all([
    get(`/api/v1/devices/${encodeURIComponent(arg)}`),
    get("/api/v1/alerts", { device: arg, limit: 10 }),
  ]);
  state.devices.set(d.id, { ...state.devices.get(d.id), ...d });
  const kind = state.site.kinds[d.kind];
  const charted = kind.metrics.filter((m) => m.key in d.last_values || m.key === kind.metrics[0].key);
  const metric = charted.some((m) => m.key === params.metric) ? params.metric : charted[0].key;
  const range = RANGES[params.range] ? params.range : "24h";
  const link = (changes) => `#/device/${encodeURIComponent(d.id)}?${new URLSearchParams({ metric, range, ...changes })}`;
  const chartEl = h("div", { class: "chart", role: "img", "aria-label": pick(charted.find((m) => m.key === metric), "label") });
  const events = kind.events.length ? await get(`/api/v1/devices/${encodeURIComponent(d.id)}/events`, { limit: 20 }) : null;
  const meta = [
    ["device.id", d.id], ["device.kind", pick(kind, "label")], ["device.room", roomName(state, d.room)],
    ["device.building", state.buildings.get(d.building)], ["device.interval", `${num(d.interval_s, 0)} s`],
    ["device.last_seen", when(d.last_seen)],
    ["device.source", d.source ? `${t(`source.${d.source.protocol}`)} · ${d.source.where}` : t("source.native")],
  ];
  const view = h("div", { class: "grid" },
    h("div", { class: "device-head wide" }, h("h1", {}, dot(d.online), d.name || d.id),
      h("dl", { class: "values inline" }, Object.entries(d.last_values).filter(([k]) => k !== "rssi_dbm").map(([k, v]) => [
        h("dt", {}, metricLabel(state, d.id, k)), h("dd", {}, live(state, d.id, k, v, { class: "big" }))]))),
    card(t("device.history"), [
      h("div", { class: "toolbar" },
        h("div", { class: "segmented" }, charted.map((m) => h("a", { href: link({ metric: m.key }), class: m.key === metric ? "active" : "" }, pick(m, "label")))),
        h("div", { class: "segmented" }, Object.keys(RANGES).map((r) => h("a", { href: link({ range: r }), class: r === range ? "active" : "", dataset: { range: r } }, t(`device.range.${r}`))))),
      chartEl,
    ], { class: "wide" }),
    card(t("device.metadata"), h("dl", { class: "meta" }, meta.map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)]),
      Object.entries(d.settings).map(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "number" ? num(v, 2) : String(v))]))),
    card(t("device.alerts"), alerts.length ? h("div", { class: "stack" }, alerts.map((a) => alertRow(state, a, rerender)))
      : h("p", { class: "muted" }, t("common.none"))),
    events ? card(t("device.events"), list(events, (e) => h("div", { class: "row" }, h("span", { class: "grow" }, when(e.ts)),
      h("small", {}, [e.type, ...Object.values(e.data)].join(" · "))), t("common.none"))) : null);
  requestAnimationFrame(() => drawChart(chartEl, state, d, metric, range));
  return view;
}

// --------------------------------------------------------------------------------- alerts

function select(name, value, options, label) {
  return h("label", { class: "filter" }, label, h("select", { name }, h("option", { value: "" }, t("common.all")),
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

function filters(params, controls, base) {
  const form = h("form", { class: "filters" }, controls);
  form.addEventListener("change", () => {
    const query = new URLSearchParams([...new FormData(form)].filter(([, v]) => v !== ""));
    location.hash = `#/${base}?${query}`;
  });
  return form;
}

async function alertsView({ state, params, rerender }) {
  // "open" (not cleared yet) is a filter of its own in the API; the others are states.
  const open = params.state === "open";
  const query = { open: open || null, state: open ? null : params.state, severity: params.severity, rule: params.rule, building: params.building, limit: 200 };
  const alerts = await get("/api/v1/alerts", query);
  return h("div", { class: "stack" },
    filters(params, [
      select("state", params.state ?? "", ["open", "active", "acknowledged", "cleared"].map((s) => [s, t(`state.${s}`)]), t("alerts.state")),
      select("severity", params.severity ?? "", SEVERITIES.map((s) => [s, t(`severity.${s}`)]), t("alerts.severity")),
      select("building", params.building ?? "", state.site.buildings.map((b) => [b.id, b.name]), t("alerts.building")),
      // The rules and their labels come from the registry, through /api/v1/site.
      select("rule", params.rule ?? "", Object.entries(state.site.rules).map(([id, r]) => [id, pick(r, "label")]), t("alerts.rule")),
    ], "alerts"),
    alerts.length ? alerts.map((a) => alertRow(state, a, rerender)) : h("p", { class: "muted" }, t("alerts.none")));
}

// ---------------------------------------------------------------------------- work orders

async function orders({ state, params, rerender }) {
  const list_ = await get("/api/v1/work-orders", { trade: params.trade, status: params.status, overdue: params.overdue, limit: 500 });
  const next = (s) => STATUSES[STATUSES.indexOf(s) + 1];
  return h("div", { class: "stack" },
    filters(params, [
      select("trade", params.trade ?? "", TRADES.map((x) => [x, t(`trade.${x}`)]), t("orders.trade")),
      select("status", params.status ?? "", STATUSES.map((x) => [x, t(`status.${x}`)]), t("orders.status")),
      select("overdue", params.overdue ?? "", [["true", t("orders.overdue")]], t("orders.due_filter")),
    ], "orders"),
    list_.length ? list_.map((o) => h("article", { class: `order ${o.overdue ? "overdue" : ""} ${o.status}`, dataset: { order: o.id } },
      h("div", { class: "alert-head" },
        chip(t(`trade.${o.trade}`), "info"), h("strong", { class: "grow" }, pick(o, "title")),
        o.overdue ? chip(t("orders.overdue"), "bad") : null, chip(t(`status.${o.status}`), o.status === "done" ? "ok" : "")),
      h("p", { class: "muted small" }, deviceLink(state, o.device_id), ` · ${where(state, o)} · ${t("orders.opened", { t: when(o.opened) })} · `,
        h("span", { class: o.overdue ? "error-text" : "" }, t("orders.due", { t: when(o.due) })),
        o.assignee ? ` · ${t("orders.assignee")}: ${o.assignee}` : ""),
      o.note ? h("p", { class: "small" }, `${t("orders.note")}: ${o.note}`) : null,
      next(o.status) ? h("div", { class: "actions" }, h("button", {
        type: "button", onclick: async () => {
          await asStaff(() => send("PATCH", `/api/v1/work-orders/${o.id}`, { status: next(o.status) }));
          rerender();
        },
      }, t("orders.advance", { s: t(`status.${next(o.status)}`) }))) : null))
      : h("p", { class: "muted" }, t("orders.none")));
}

export const VIEWS = {
  overview: { render: overview, live: ["reading", "event", "alert"] },
  closing: { render: closing, live: ["reading", "event", "alert"] },
  buildings: { render: buildings, live: ["alert"] },
  device: { render: device, live: ["alert"] },
  alerts: { render: alertsView, live: ["alert"] },
  orders: { render: orders, live: ["alert"] },
};
