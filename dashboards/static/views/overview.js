// The overview: open alerts, today's consumption, the sample fridges, doors, UV lamps, devices offline.

import { get } from "../api.js";
import { num, pct, pick, t, when } from "../i18n.js";
import { card, chip, deviceLink, dot, h, live, roomName } from "../ui.js";
import { SEVERITIES, SEVERITY_TONE, list, where } from "./common.js";

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

export default { render: overview, live: ["reading", "event", "alert"] };
