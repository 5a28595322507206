// The head's overview: what needs attention today. Open alerts with whose hands they are in,
// who is on duty, today's work orders and ledger, each building's closing state, then today's
// consumption, the sample fridges, doors, UV lamps and devices offline.

import { get } from "../api.js";
import { addLabels, dayWord, isZh, num, pct, pick, t, when } from "../i18n.js";
import { card, chip, deviceLink, dot, h, live, roomName } from "../ui.js";
import { SEVERITIES, SEVERITY_TONE, list, where } from "./common.js";

addLabels({
  "zh-CN": {
    "overview.duty": "值班", "overview.on_duty": "当前值班", "overview.next": "其后", "overview.no_duty": "此刻没有排班",
    "overview.owner": "负责人：{who}", "overview.no_owner": "还没有人接手", "overview.all_alerts": "查看全部告警",
    "overview.no_alerts": "没有未处理的告警",
    "overview.orders": "今日工单", "overview.orders_overdue": "{n} 张已超期", "overview.no_orders": "今日没有工单",
    "overview.all_orders": "查看全部工单",
    "overview.ledger": "今日安全台账", "overview.ledger_done": "已完成", "overview.ledger_blank": "待填写",
    "overview.ledger_failed": "不合格", "overview.ledger_pending": "未到时间", "overview.ledger_of": "共 {n} 项",
    "overview.closing": "各楼闭园情况", "overview.closing_left": "还有 {n} 项未关",
    "overview.order_status": "工单：{s}",
  },
  en: {
    "overview.duty": "On duty", "overview.on_duty": "On duty now", "overview.next": "Then", "overview.no_duty": "Nobody is rostered now",
    "overview.owner": "In hand: {who}", "overview.no_owner": "Nobody has taken it yet", "overview.all_alerts": "All alerts",
    "overview.no_alerts": "No open alerts",
    "overview.orders": "Today's work orders", "overview.orders_overdue": "{n} overdue", "overview.no_orders": "No work orders today",
    "overview.all_orders": "All work orders",
    "overview.ledger": "Today's safety record", "overview.ledger_done": "Done", "overview.ledger_blank": "To fill in",
    "overview.ledger_failed": "Failed", "overview.ledger_pending": "Not due yet", "overview.ledger_of": "{n} items",
    "overview.closing": "Closing, by building", "overview.closing_left": "{n} still open or on",
    "overview.order_status": "work order: {s}",
  },
});

const ORDER_STATUSES = ["open", "assigned", "on_site", "done"];
const ALERT_TONE = { active: "bad", acknowledged: "warn", cleared: "ok" };

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
      key === "today" ? h("span") : h("span", { class: `delta ${change(v) == null ? "" : change(v) > 0 ? "up" : "down"}` },
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

function person(p) {
  if (!p.role) return p.name;
  return isZh() ? `${p.name}（${p.role}）` : `${p.name} (${p.role})`;
}

function dutyCard(duty) {
  if (!duty.on_duty) return card(t("overview.duty"), h("p", { class: "muted" }, t("overview.no_duty")), { class: "duty" });
  return card(t("overview.duty"), [
    h("p", { class: "duty-now" }, h("small", { class: "muted" }, t("overview.on_duty")), h("strong", { class: "big-name" }, person(duty.on_duty))),
    duty.next.length ? h("p", { class: "small" }, h("span", { class: "muted" }, `${t("overview.next")}${t("common.colon")}`),
      duty.next.map(person).join(" → ")) : null,
  ], { class: "duty" });
}

function alertsCard(state, o) {
  const counts = h("div", { class: "severities" }, SEVERITIES.map((s) => h("a", {
    href: `#/alerts?state=open&severity=${s}`, class: `severity ${o.open_alerts[s] ? SEVERITY_TONE[s] : "quiet"}`,
    dataset: { severity: s },
  }, h("span", { class: "count" }, num(o.open_alerts[s], 0)), h("span", {}, t(`severity.${s}`)))));
  const rows = o.alerts.slice(0, 8).map((a) => {
    const owner = a.acked_by ?? a.assignee;
    return h("div", { class: `open-alert ${a.severity}`, dataset: { alert: a.id } },
      h("div", { class: "row" }, chip(t(`severity.${a.severity}`), SEVERITY_TONE[a.severity]),
        h("a", { class: "grow", href: `#/alerts?state=open` }, pick(a, "title")),
        chip(t(`state.${a.state}`), ALERT_TONE[a.state])),
      h("p", { class: "small muted" }, `${where(state, a)} · ${when(a.first)}`,
        a.order_status ? ` · ${t("overview.order_status", { s: t(`status.${a.order_status}`) })}` : ""),
      h("p", { class: `small owner ${owner ? "" : "none"}` }, owner ? t("overview.owner", { who: pick(owner, "name") }) : t("overview.no_owner")));
  });
  return card(t("overview.alerts"), [counts,
    h("p", { class: "muted small" }, t("overview.unacked", { n: num(o.unacknowledged, 0) })),
    rows.length ? h("div", { class: "open-alerts" }, rows) : h("p", { class: "muted" }, t("overview.no_alerts")),
    o.alerts.length ? h("p", { class: "small" }, h("a", { href: "#/alerts?state=open" }, t("overview.all_alerts"))) : null,
  ], { class: "span2" });
}

function ordersCard(orders) {
  const total = ORDER_STATUSES.reduce((n, s) => n + orders.by_status[s], 0);
  return card(t("overview.orders"), total ? [
    h("div", { class: "counts" }, ORDER_STATUSES.map((s) => h("span", { class: `count-box ${s === "done" ? "ok" : ""}` },
      h("strong", {}, num(orders.by_status[s], 0)), h("small", {}, t(`status.${s}`))))),
    orders.overdue ? h("p", { class: "error-text small" }, t("overview.orders_overdue", { n: num(orders.overdue, 0) })) : null,
    list(orders.orders.slice(0, 5), (x) => h("div", { class: "row small" },
      chip(t(`trade.${x.trade}`), "info"), h("span", { class: "grow" }, pick(x, "title")),
      x.assignee ? h("span", { class: "muted" }, pick(x.assignee, "name")) : null,
      chip(t(`status.${x.status}`), x.status === "done" ? "ok" : x.overdue ? "bad" : "")), ""),
    h("p", { class: "small" }, h("a", { href: "#/orders" }, t("overview.all_orders"))),
  ] : h("p", { class: "muted" }, t("overview.no_orders")));
}

function ledgerCard(ledger) {
  const parts = [["done", "ok"], ["failed", "bad"], ["blank", "warn"], ["pending", ""]];
  const total = Math.max(ledger.total, 1);
  return card(t("overview.ledger"), [
    h("div", { class: "stacked", role: "img", "aria-label": parts.map(([k]) => `${t(`overview.ledger_${k}`)} ${ledger[k]}`).join("，") },
      parts.map(([k, tone]) => (ledger[k] ? h("span", { class: `part ${tone}`, style: `width:${(ledger[k] / total) * 100}%` }) : null))),
    h("div", { class: "counts" }, parts.map(([k, tone]) => h("span", { class: `count-box ${ledger[k] ? tone : ""}`, dataset: { ledger: k } },
      h("strong", {}, num(ledger[k], 0)), h("small", {}, t(`overview.ledger_${k}`))))),
    h("p", { class: "muted small" }, t("overview.ledger_of", { n: num(ledger.total, 0) })),
  ]);
}

function closingCard(buildings) {
  return card(t("overview.closing"), list(buildings, (b) => h("a", { class: "row", href: "#/closing", dataset: { building: b.id } },
    h("span", { class: "grow" }, b.name),
    b.open_now ? chip(b.closes_at ? t("closing.open", { t: when(b.closes_at, "time") }) : t("closing.open_all_day"), "info")
      : b.closed_up ? chip(t("closing.closed_up"), "ok")
        : chip(t("overview.closing_left", { n: num(b.left, 0) }), b.state === "known" ? "warn" : "bad")), ""));
}

async function overview({ state }) {
  const o = await get("/api/v1/dashboard/overview");
  const day = o.day;
  const dayName = pick(day, "name") || dayWord(state.site, day.school_day);
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
    alertsCard(state, o),
    dutyCard(o.duty),
    ordersCard(o.orders),
    ledgerCard(o.ledger),
    closingCard(o.closing),
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

export default { render: overview, live: ["reading", "event", "alert", "work_order"] };
