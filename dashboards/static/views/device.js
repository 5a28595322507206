// One device: its history chart, settings, recent alerts and events.
//
// The chart says what it shows: a counter as use per bucket under a title naming both
// (每小时用电量（千瓦时）), a state as 开/关 steps, a gauge with its allowed range where the kind
// has one; the building's closed hours are shaded and the device's alerts marked, in the
// colours of the rest of the dashboard (red: not acknowledged, amber: acknowledged, grey:
// cleared; green: within range).

import { get, send } from "../api.js";
import { addLabels, isZh, num, pick, t, unitWord, when } from "../i18n.js";
import { card, dot, failure, h, live, metricLabel, roomName, signedIn } from "../ui.js";
import { echarts, list } from "./common.js";
import { alertRow } from "./alerts.js";

addLabels({
  "zh-CN": {
    "device.seconds": "{n} 秒", "device.settings": "设定", "device.event": "事件",
    "device.step.1h": "每小时", "device.step.6h": "每 6 小时", "device.step.1d": "每天",
    "device.use.kWh": "用电量", "device.use.m³": "用水量", "device.use.h": "点亮时长",
    "device.unit.kWh": "千瓦时", "device.unit.m³": "立方米", "device.unit.h": "小时",
    "device.legend.closed": "闭园时段", "device.legend.allowed": "允许范围 {lo}–{hi} {unit}",
    "device.legend.active": "告警未确认", "device.legend.acknowledged": "告警已确认", "device.legend.cleared": "告警已恢复",
    "uv.care": "灯管管理", "uv.hours": "本灯管已用 {h} 小时（寿命 {life} 小时）", "uv.tube_hours": "本灯管已用",
    "uv.tube_value": "{h} 小时（寿命的 {pct}%）", "uv.clean_due": "下次擦拭：{t}",
    "uv.test_due": "下次强度检测：{t}", "uv.never": "尚无登记", "uv.passed": "合格", "uv.failed": "不合格（低于 {lim}）",
    "uv.tube": "已更换灯管", "uv.clean": "已擦拭灯管", "uv.test": "登记强度检测", "uv.uw": "测得强度（微瓦/平方厘米）",
    "uv.entry": "{t} {what}，{who}", "uv.unit": "微瓦/平方厘米",
  },
  en: {
    "device.seconds": "{n} s", "device.settings": "Settings", "device.event": "Event",
    "device.step.1h": "Hourly", "device.step.6h": "Six-hourly", "device.step.1d": "Daily",
    "device.use.kWh": "electricity use", "device.use.m³": "water use", "device.use.h": "lit time",
    "device.unit.kWh": "kWh", "device.unit.m³": "m³", "device.unit.h": "h",
    "device.legend.closed": "Closed hours", "device.legend.allowed": "Allowed range {lo}–{hi} {unit}",
    "device.legend.active": "Alert not acknowledged", "device.legend.acknowledged": "Alert acknowledged",
    "device.legend.cleared": "Alert cleared",
    "uv.care": "Tube care", "uv.hours": "This tube: {h} h lit (life {life} h)", "uv.tube_hours": "This tube",
    "uv.tube_value": "{h} h ({pct}% of its life)", "uv.clean_due": "Next wipe: {t}",
    "uv.test_due": "Next irradiance test: {t}", "uv.never": "Nothing recorded yet", "uv.passed": "passed", "uv.failed": "failed (below {lim})",
    "uv.tube": "Tube changed", "uv.clean": "Tube wiped", "uv.test": "Record a test", "uv.uw": "Irradiance measured (µW/cm²)",
    "uv.entry": "{t} {what}, {who}", "uv.unit": "µW/cm²",
  },
});

const RANGES = {
  "24h": { hours: 24, gauge: "5m", counter: "1h" },
  "7d": { hours: 168, gauge: "30m", counter: "6h" },
  "30d": { hours: 720, gauge: "2h", counter: "1d" },
};

// One meaning per colour, as everywhere in the dashboard (app.css): the data itself is blue.
const COLOURS = {
  data: "#1f5fa8",
  allowed: "rgba(26,127,90,0.12)",
  closed: "rgba(102,115,111,0.10)",
  active: "rgba(192,57,43,0.22)",
  acknowledged: "rgba(178,106,0,0.20)",
  cleared: "rgba(120,128,125,0.18)",
};

function increases(points) {
  // A counter's use per bucket: the rise of its highest reading from the bucket before.
  return points.map((p, i) => {
    const before = i ? points[i - 1].max : p.min;
    return p.max < before ? p.max : p.max - before;
  });
}

/** What the chart shows, as its title says it: 每小时用电量（千瓦时）, 温度（°C）, 开关. */
function chartTitle(m, step) {
  const paren = (text) => (isZh() ? `（${text}）` : ` (${text})`);
  if (m.type === "counter") {
    const use = t(`device.use.${m.unit}`) === `device.use.${m.unit}` ? pick(m, "label") : t(`device.use.${m.unit}`);
    const unit = t(`device.unit.${m.unit}`) === `device.unit.${m.unit}` ? m.unit : t(`device.unit.${m.unit}`);
    return `${t(`device.step.${step}`)}${isZh() ? "" : " "}${use}${paren(unit)}`;
  }
  return m.unit ? `${pick(m, "label")}${paren(unitWord(m.unit))}` : pick(m, "label");
}

/** A local date (YYYY-MM-DD) in the site's time zone. */
function localDate(ms, timeZone) {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(ms));
}

/** The building's closed spans within [startMs, endMs], from the school calendar's open spans. */
async function closedSpans(state, buildingId, startMs, endMs) {
  const tz = state.site.timezone;
  const dates = [];
  for (let ms = startMs - 86_400_000; ms <= endMs + 86_400_000; ms += 86_400_000) {
    const d = localDate(ms, tz);
    if (!dates.includes(d)) dates.push(d);
  }
  const days = await Promise.all(dates.map((date) => get("/api/v1/calendar", { date })));
  const open = days.flatMap((day) => (day.buildings.find((b) => b.id === buildingId)?.open ?? [])
    .map((s) => [Date.parse(s.start), Date.parse(s.end)])).sort((a, b) => a[0] - b[0]);
  const closed = [];
  let from = startMs;
  for (const [lo, hi] of open) {
    if (hi <= from) continue;
    if (lo > from) closed.push([from, Math.min(lo, endMs)]);
    from = Math.max(from, hi);
    if (from >= endMs) break;
  }
  if (from < endMs) closed.push([from, endMs]);
  return closed.filter(([lo, hi]) => hi > lo);
}

function legend(items) {
  return h("div", { class: "chart-legend" }, items.map(([colour, text]) => h("span", {},
    h("span", { class: "swatch", style: `background:${colour}` }), text)));
}

async function drawChart(el, legendEl, state, device, metric, range) {
  const m = state.site.kinds[device.kind].metrics.find((x) => x.key === metric);
  const counter = m.type === "counter";
  const onOff = m.type === "state";
  const spec = RANGES[range];
  const endMs = Date.now();
  const startMs = endMs - spec.hours * 3600_000;
  const step = counter ? spec.counter : spec.gauge;
  const [[series], lib, closed, alerts] = await Promise.all([
    get(`/api/v1/devices/${encodeURIComponent(device.id)}/readings`, { metric, start: new Date(startMs).toISOString(), step }),
    echarts(),
    closedSpans(state, device.building, startMs, endMs),
    get("/api/v1/alerts", { device: device.id, start: new Date(startMs - 30 * 86_400_000).toISOString(), limit: 200 }),
  ]);
  if (!series.points.length) {
    el.replaceChildren(h("p", { class: "muted" }, t("device.no_data")));
    return;
  }
  const chart = lib.getInstanceByDom(el) ?? lib.init(el, null, { renderer: "canvas" });
  const ts = series.points.map((p) => Date.parse(p.ts));
  const unit = unitWord(m.unit);
  const words = onOff ? m.words : null;
  const areas = closed.map(([lo, hi]) => [{ xAxis: lo, itemStyle: { color: COLOURS.closed } }, { xAxis: hi }]);
  const shown = alerts.filter((a) => (a.cleared_at ? Date.parse(a.cleared_at) : endMs) > startMs);
  for (const a of shown) {
    areas.push([{ xAxis: Math.max(startMs, Date.parse(a.first)), itemStyle: { color: COLOURS[a.state] } },
      { xAxis: a.cleared_at ? Date.parse(a.cleared_at) : endMs }]);
  }
  let allowed = null;
  if (m.allowed && device.settings[m.allowed.low] != null && device.settings[m.allowed.high] != null) {
    allowed = [device.settings[m.allowed.low], device.settings[m.allowed.high]];
    areas.push([{ yAxis: allowed[0], itemStyle: { color: COLOURS.allowed } }, { yAxis: allowed[1] }]);
  }
  const markArea = { silent: true, data: areas };
  const text = (v) => (onOff ? pick(words, v >= 0.5 ? "true" : "false") : `${num(v, 2)} ${unit}`);
  const base = {
    title: { text: chartTitle(m, step), left: 0, top: 0, textStyle: { fontSize: 14, fontWeight: 600, color: "#1d2724" } },
    grid: { left: onOff ? 56 : 52, right: 16, top: 40, bottom: 28 },
    tooltip: { trigger: "axis", valueFormatter: text },
    xAxis: { type: "time", min: startMs, max: endMs, axisLabel: { hideOverlap: true, formatter: (v) => when(v, range === "24h" ? "time" : "axis") } },
    yAxis: onOff
      ? { type: "value", min: 0, max: 1, interval: 1, axisLabel: { formatter: (v) => pick(words, v >= 0.5 ? "true" : "false") } }
      : {
        // With a band the axis reaches past it; its odd end values (−1, 9) are left unlabelled.
        type: "value", scale: !counter, axisLabel: { formatter: (v) => num(v, 2), showMinLabel: !allowed, showMaxLabel: !allowed },
        ...(allowed ? { min: (e) => Math.min(e.min, allowed[0]) - 1, max: (e) => Math.max(e.max, allowed[1]) + 1 } : {}),
      },
    animation: false,
  };
  const seriesSpec = counter
    ? [{ type: "bar", name: chartTitle(m, step), data: ts.map((x, i) => [x, increases(series.points)[i]]), itemStyle: { color: COLOURS.data }, markArea }]
    : onOff
      ? [{ type: "line", name: pick(m, "label"), step: "end", data: ts.map((x, i) => [x, series.points[i].max >= 0.5 ? 1 : 0]), symbol: "none",
        lineStyle: { color: COLOURS.data }, areaStyle: { color: "rgba(31,95,168,0.15)" }, markArea }]
      : [
        { type: "line", data: ts.map((x, i) => [x, series.points[i].min]), lineStyle: { opacity: 0 }, stack: "band", symbol: "none", tooltip: { show: false } },
        { type: "line", data: ts.map((x, i) => [x, series.points[i].max - series.points[i].min]), lineStyle: { opacity: 0 }, stack: "band", symbol: "none",
          areaStyle: { color: "rgba(31,95,168,0.12)" }, tooltip: { show: false } },
        { type: "line", name: pick(m, "label"), data: ts.map((x, i) => [x, series.points[i].mean]), symbol: "none", lineStyle: { color: COLOURS.data, width: 2 }, markArea },
      ];
  chart.setOption({ ...base, series: seriesSpec }, true);
  chart.resize();
  const states = [...new Set(shown.map((a) => a.state))];
  legendEl.replaceChildren(legend([
    closed.length ? [COLOURS.closed, t("device.legend.closed")] : null,
    allowed ? [COLOURS.allowed, t("device.legend.allowed", { lo: num(allowed[0]), hi: num(allowed[1]), unit })] : null,
    ...states.map((s) => [COLOURS[s], t(`device.legend.${s}`)]),
  ].filter(Boolean)));
}

/** An event as words: 刷卡 · 卡号 9008 · 已开门. */
function eventText(kind, e) {
  const label = kind.event_labels?.[e.type];
  if (!label) return t("device.event");
  const fields = label.fields.map((f) => {
    const v = e.data[f.key];
    if (v === undefined || v === null) return null;
    if (f.words) return pick(f.words, v ? "true" : "false");
    const unit = pick(f, "unit");
    return `${pick(f, "label")} ${typeof v === "number" ? num(v, 2) : v}${unit ? ` ${unit}` : ""}`;
  });
  return [pick(label, "label"), ...fields.filter(Boolean)].join(" · ");
}

/** A setting as people read it: 最高温度 8 °C. */
function settingRows(kind, settings) {
  return (kind.settings ?? []).filter((s) => s.key in settings).map((s) => {
    const v = settings[s.key];
    const unit = pick(s, "unit");
    const value = s.words ? pick(s.words, v ? "true" : "false") : `${typeof v === "number" ? num(v, 2) : v}${unit ? ` ${unit}` : ""}`;
    return [h("dt", {}, pick(s, "label")), h("dd", { dataset: { setting: s.key } }, value)];
  });
}

const careUrl = (d) => `/api/v1/uv/${encodeURIComponent(d.id)}/care`;

/** A UV lamp's tube: its hours, the wipe and test due, and recording a change, a wipe or a test (docs/uv.md). */
function uvCare(d, c, rerender) {
  const base = careUrl(d);
  const error = h("p", { class: "error-text", role: "alert" });
  const record = async (body) => {
    error.textContent = "";
    if (!(await signedIn())) return;
    try {
      await send("POST", base, body);
      rerender();
    } catch (err) {
      error.textContent = failure(err);
    }
  };
  const uw = h("input", { type: "number", name: "uw_cm2", min: "1", step: "0.1", required: true, inputmode: "decimal" });
  const test = h("form", { class: "uv-test" }, h("label", {}, t("uv.uw"), uw), h("button", { type: "submit" }, t("uv.test")));
  test.addEventListener("submit", (ev) => { ev.preventDefault(); record({ action: "test", uw_cm2: Number(uw.value) }); });
  const due = (key, at) => h("p", {}, t(key, { t: at ? when(at) : t("uv.never") }));
  return card(t("uv.care"), [
    h("p", { dataset: { tubeHours: c.tube_hours } }, t("uv.hours", { h: num(c.tube_hours, 1), life: num(c.tube_life_h, 0) })),
    due("uv.clean_due", c.clean_due), due("uv.test_due", c.test_due),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", onclick: () => record({ action: "tube" }) }, t("uv.tube")),
      h("button", { type: "button", onclick: () => record({ action: "clean" }) }, t("uv.clean"))),
    test, error,
    list(c.entries.slice(0, 10), (e) => h("div", { class: "row", dataset: { care: e.action } }, t("uv.entry", {
      t: when(e.at), who: pick(e.by, "name"),
      what: e.uw_cm2 === null ? pick(e, "action") : `${pick(e, "action")} ${num(e.uw_cm2, 1)} ${t("uv.unit")}`,
    })), t("uv.never")),
  ]);
}

async function device({ state, arg, params, rerender }) {
  const [d, alerts] = await Promise.all([
    get(`/api/v1/devices/${encodeURIComponent(arg)}`),
    get("/api/v1/alerts", { device: arg, limit: 10 }),
  ]);
  state.devices.set(d.id, { ...state.devices.get(d.id), ...d });
  const kind = state.site.kinds[d.kind];
  const care = d.kind === "uv_lamp" ? await get(careUrl(d)) : null;
  // A UV lamp's own hour counter goes on across tube changes: the header gives the tube's
  // hours, the care register's, in its place (the counter stays in the history chart).
  const superseded = new Set(care ? kind.metrics.filter((m) => m.type === "counter" && m.unit === "h").map((m) => m.key) : []);
  const charted = kind.metrics.filter((m) => m.key in d.last_values || m.key === kind.metrics[0].key);
  const metric = charted.some((m) => m.key === params.metric) ? params.metric : charted[0].key;
  const range = RANGES[params.range] ? params.range : "24h";
  const link = (changes) => `#/device/${encodeURIComponent(d.id)}?${new URLSearchParams({ metric, range, ...changes })}`;
  const chartEl = h("div", { class: "chart", role: "img", "aria-label": pick(charted.find((m) => m.key === metric), "label") });
  const legendEl = h("div");
  const events = kind.events.length ? await get(`/api/v1/devices/${encodeURIComponent(d.id)}/events`, { limit: 20 }) : null;
  const meta = [
    ["device.kind", pick(kind, "label")], ["device.room", roomName(state, d.room)],
    ["device.building", state.buildings.get(d.building)], ["device.interval", t("device.seconds", { n: num(d.interval_s, 0) })],
    ["device.last_seen", when(d.last_seen)],
    ["device.source", d.source ? `${t(`source.${d.source.protocol}`)} · ${d.source.where}` : t("source.native")],
  ];
  const settings = settingRows(kind, d.settings);
  const view = h("div", { class: "grid" },
    h("div", { class: "device-head wide" }, h("h1", {}, dot(d.online), d.name || pick(kind, "label")),
      h("dl", { class: "values inline" }, Object.entries(d.last_values).filter(([k]) => k !== "rssi_dbm" && !superseded.has(k)).map(([k, v]) => [
        h("dt", {}, metricLabel(state, d.id, k)), h("dd", {}, live(state, d.id, k, v, { class: "big" }))]),
        care ? [h("dt", {}, t("uv.tube_hours")), h("dd", {}, h("span", { class: "big", dataset: { tubeHours: care.tube_hours } },
          t("uv.tube_value", { h: num(care.tube_hours, 1), pct: num(care.tube_life_pct, 0) })))] : null)),
    card(t("device.history"), [
      h("div", { class: "toolbar" },
        h("div", { class: "segmented" }, charted.map((m) => h("a", { href: link({ metric: m.key }), class: m.key === metric ? "active" : "" }, pick(m, "label")))),
        h("div", { class: "segmented" }, Object.keys(RANGES).map((r) => h("a", { href: link({ range: r }), class: r === range ? "active" : "", dataset: { range: r } }, t(`device.range.${r}`))))),
      chartEl, legendEl,
    ], { class: "wide" }),
    card(t("device.metadata"), [h("dl", { class: "meta" }, meta.map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
      settings.length ? [h("h3", { class: "meta-head" }, t("device.settings")), h("dl", { class: "meta settings" }, settings)] : null]),
    card(t("device.alerts"), alerts.length ? h("div", { class: "stack" }, alerts.map((a) => alertRow(state, a, rerender)))
      : h("p", { class: "muted" }, t("common.none"))),
    events ? card(t("device.events"), list(events, (e) => h("div", { class: "row" }, h("span", { class: "grow" }, when(e.ts)),
      h("small", { dataset: { event: e.type } }, eventText(kind, e))), t("common.none"))) : null,
    care ? uvCare(d, care, rerender) : null);
  requestAnimationFrame(() => drawChart(chartEl, legendEl, state, d, metric, range));
  return view;
}

export default { render: device, live: ["alert"] };
