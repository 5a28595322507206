// One device: its history chart, metadata, recent alerts and door events.

import { get } from "../api.js";
import { num, pick, t, when } from "../i18n.js";
import { card, dot, h, live, metricLabel, roomName } from "../ui.js";
import { echarts, list } from "./common.js";
import { alertRow } from "./alerts.js";

const RANGES = {
  "24h": { hours: 24, gauge: "5m", counter: "1h" },
  "7d": { hours: 168, gauge: "30m", counter: "6h" },
  "30d": { hours: 720, gauge: "2h", counter: "1d" },
};

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

export default { render: device, live: ["alert"] };
