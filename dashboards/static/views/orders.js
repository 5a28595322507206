// Work orders (工单): the list by trade and status, overdue first; one order with its evidence
// chart, what was done, the photo and its history; dispatching (派单), 到场 and 完成.

import { blob, get, send, session } from "../api.js";
import { addLabels, isZh, num, pick, t, when } from "../i18n.js";
import { asStaff, card, chip, deviceLink, dialog, failure, h, metricLabel, signedIn } from "../ui.js";
import { echarts, filters, select, where } from "./common.js";

addLabels({
  "zh-CN": {
    "trade.water": "水工", "trade.electric": "电工", "trade.carpentry": "木工", "trade.other": "其他",
    "status.open": "待派", "status.assigned": "已派", "status.on_site": "已到场", "status.done": "已完成",
    "repair.repair": "修理", "repair.replace": "更换", "repair.salvage": "修旧利废",
    "orders.title": "工单", "orders.trade": "工种", "orders.status": "状态", "orders.overdue": "已超期",
    "orders.due": "期限 {t}", "orders.assignee": "负责人", "orders.none": "没有工单", "orders.note": "备注", "orders.alert_now": "告警现状",
    "orders.due_filter": "期限", "orders.opened": "开单 {t}", "orders.number": "第 {n} 号工单",
    "orders.dispatch": "派单", "orders.reassign": "改派", "orders.on_site": "到场", "orders.done": "完成",
    "orders.open_order": "查看工单", "orders.back": "全部工单", "orders.not_found": "没有这张工单",
    "orders.evidence": "触发时的{metric}", "orders.evidence_unit": "触发时的{metric}（{unit}）",
    "orders.no_evidence": "这张工单是手动派的，没有触发时的读数。可到设备页查看历史读数：",
    "orders.result": "维修结果", "orders.work_done": "做了什么", "orders.repair": "处理方式", "orders.photo": "照片",
    "orders.photo_alt": "维修完成后的照片", "orders.history": "处理记录", "orders.on_site_at": "{t} 到场",
    "orders.done_at": "{t} 完成",
    "dispatch.title": "派单", "dispatch.person": "派给谁", "dispatch.pick": "请选择负责人",
    "dispatch.fits": "会{trade}活的", "dispatch.others": "其他人员", "dispatch.due": "期限", "dispatch.due_hint": "不填则按默认期限",
    "dispatch.note": "备注", "dispatch.note_hint": "例如：先关厨房总阀，带上阀芯", "dispatch.submit": "派单",
    "done.title": "完成工单", "done.work_done_hint": "例如：更换了水龙头阀芯，已试水不漏",
    "done.photo_hint": "可选，JPEG、PNG 或 WebP，不超过 {mb} MB",
    "done.photo_too_large": "照片太大（{size} MB），不能超过 {mb} MB，请换一张或压缩后再传。",
    "done.submit": "完成",
    "step.open": "开单（{trade}）", "step.dispatch": "派给 {who}（{trade}），期限 {due}", "step.on_site": "到场",
    "step.done": "完成（{repair}）：{text}", "step.update": "备注：{note}", "step.note": "备注：{note}",
  },
  en: {
    "trade.water": "Plumbing", "trade.electric": "Electrical", "trade.carpentry": "Carpentry", "trade.other": "Other",
    "status.open": "Open", "status.assigned": "Assigned", "status.on_site": "On site", "status.done": "Done",
    "repair.repair": "Repaired", "repair.replace": "Replaced", "repair.salvage": "Mended with old parts",
    "orders.title": "Work orders", "orders.trade": "Trade", "orders.status": "Status", "orders.overdue": "Overdue",
    "orders.due": "due {t}", "orders.assignee": "Assignee", "orders.none": "No work orders", "orders.note": "Note", "orders.alert_now": "The alert now",
    "orders.due_filter": "Due", "orders.opened": "opened {t}", "orders.number": "Work order {n}",
    "orders.dispatch": "Dispatch", "orders.reassign": "Reassign", "orders.on_site": "On site", "orders.done": "Done",
    "orders.open_order": "Open the work order", "orders.back": "All work orders", "orders.not_found": "No such work order",
    "orders.evidence": "{metric} when it was raised", "orders.evidence_unit": "{metric} when it was raised ({unit})",
    "orders.no_evidence": "This order was dispatched by hand and has no readings from when it was raised. The device's history:",
    "orders.result": "Result", "orders.work_done": "What was done", "orders.repair": "How", "orders.photo": "Photo",
    "orders.photo_alt": "Photo of the finished job", "orders.history": "History", "orders.on_site_at": "on site {t}",
    "orders.done_at": "done {t}",
    "dispatch.title": "Dispatch", "dispatch.person": "Assign to", "dispatch.pick": "Choose a person",
    "dispatch.fits": "{trade}", "dispatch.others": "Everyone else", "dispatch.due": "Due", "dispatch.due_hint": "empty: the usual due time",
    "dispatch.note": "Note", "dispatch.note_hint": "e.g. close the kitchen's main valve first", "dispatch.submit": "Dispatch",
    "done.title": "Complete the work order", "done.work_done_hint": "e.g. replaced the tap's cartridge, tested: no leak",
    "done.photo_hint": "optional: JPEG, PNG or WebP, at most {mb} MB",
    "done.photo_too_large": "The photo is too large ({size} MB): at most {mb} MB. Choose another or make it smaller.",
    "done.submit": "Done",
    "step.open": "opened ({trade})", "step.dispatch": "dispatched to {who} ({trade}), due {due}", "step.on_site": "on site",
    "step.done": "done ({repair}): {text}", "step.update": "note: {note}", "step.note": "note: {note}",
  },
});

const STATUSES = ["open", "assigned", "on_site", "done"];
const TRADES = ["water", "electric", "carpentry", "other"];
const REPAIRS = ["repair", "replace", "salvage"];
// Units as a Chinese title says them; English titles keep the symbol.
const UNIT_ZH = { "L/min": "升/分钟", "m³": "立方米", kWh: "千瓦时", W: "瓦", "°C": "摄氏度", h: "小时", V: "伏", A: "安" };
const MB = 1024 * 1024;

/** "2026-10-16T10:00", the wall-clock time of `iso` in the time zone `tz` (for datetime-local). */
function wallClock(iso, tz) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

/** The instant at which the clocks of `tz` show `value` ("2026-10-16T10:00"), as ISO. */
function instant(value, tz) {
  const asUtc = Date.parse(`${value}:00Z`);
  const offset = (ms) => Date.parse(`${wallClock(new Date(ms).toISOString(), tz)}:00Z`) - ms;
  const first = asUtc - offset(asUtc);
  return new Date(asUtc - offset(first)).toISOString(); // again, across a change of offset
}

/** "备注：…" / "Note: …". */
function said(label, text) {
  return `${label}${isZh() ? "：" : ": "}${text}`;
}

/** Logs in first (resolves false if they cancel); a viewer is told that their account may not
 * do this, and asked for one that may. */
function staffFirst() {
  return signedIn(session()?.role === "viewer" ? t("action.forbidden") : t("login.needed"));
}

function errorLine() {
  return h("p", { class: "error-text", role: "alert" });
}

/** 派单 (or 改派) for an order, or for an alert that has none yet (which opens one). Logs in
 * first; `onDone(order)` gets the order as it is after. */
export async function dispatchDialog(state, target, onDone) {
  if (!(await staffFirst())) return;
  const { order, alert } = target;
  let people;
  try {
    people = await get("/api/v1/people");
  } catch (err) {
    dialog((close) => h("div", { class: "form" }, h("p", { class: "error-text", role: "alert" }, failure(err)),
      h("button", { type: "button", onclick: close }, t("common.close"))));
    return;
  }
  const tz = state.site.timezone;
  const tradeSelect = h("select", { name: "trade", required: true },
    TRADES.map((x) => h("option", { value: x, selected: x === (order?.trade ?? "other") }, t(`trade.${x}`))));
  const person = h("select", { name: "assignee", required: true });
  const fill = () => {
    const trade = tradeSelect.value;
    const chosen = person.value || order?.assignee || "";
    const label = (p) => p.trades.length ? `${p.name}（${p.trades.map((x) => t(`trade.${x}`)).join("、")}）` : p.name;
    const option = (p) => h("option", { value: p.id, selected: p.id === chosen }, isZh() ? label(p) : label(p).replace("（", " (").replace("）", ")").replaceAll("、", ", "));
    const fits = people.filter((p) => p.trades.includes(trade));
    const others = people.filter((p) => !p.trades.includes(trade));
    person.replaceChildren(h("option", { value: "", disabled: true, selected: !chosen }, t("dispatch.pick")),
      fits.length ? h("optgroup", { label: t("dispatch.fits", { trade: t(`trade.${trade}`) }) }, fits.map(option)) : null,
      h("optgroup", { label: t("dispatch.others") }, others.map(option)));
  };
  tradeSelect.addEventListener("change", fill);
  fill();
  // An order keeps its due time unless changed; one opened from an alert is due by the end of the day unless set.
  const due = h("input", { type: "datetime-local", name: "due", required: Boolean(order), value: order ? wallClock(order.due, tz) : "" });
  const note = h("textarea", { name: "note", rows: 3, maxlength: 2000, placeholder: t("dispatch.note_hint") }, order?.note ?? "");
  const error = errorLine();
  dialog((close) => {
    const form = h("form", { class: "form dispatch" },
      h("h2", {}, t(order?.assignee ? "orders.reassign" : "dispatch.title")),
      h("p", {}, pick(order ?? alert, "title")),
      h("label", {}, t("orders.trade"), tradeSelect),
      h("label", {}, t("dispatch.person"), person),
      h("label", {}, t("dispatch.due"), due, order ? null : h("small", { class: "muted" }, t("dispatch.due_hint"))),
      h("label", {}, t("dispatch.note"), note),
      error,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, t("common.cancel")),
        h("button", { type: "submit" }, t("dispatch.submit"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { assignee: person.value, trade: tradeSelect.value, note: note.value, due: due.value ? instant(due.value, tz) : null };
      try {
        const out = await asStaff(() => order
          ? send("POST", `/api/v1/work-orders/${order.id}/dispatch`, body)
          : send("POST", `/api/v1/alerts/${alert.id}/work-order`, body));
        close();
        onDone(out);
      } catch (err) {
        error.textContent = failure(err);
      }
    });
    return form;
  });
}

/** 完成: what was done, how, and a photo (checked against the gateway's limit before sending). */
function doneDialog(order, onDone) {
  const text = h("textarea", { name: "work_done", rows: 3, maxlength: 2000, required: true, placeholder: t("done.work_done_hint") });
  const photo = h("input", { type: "file", name: "photo", accept: "image/jpeg,image/png,image/webp" });
  const mb = num(order.photo_max_bytes / MB, 1);
  const error = errorLine();
  photo.addEventListener("change", () => { error.textContent = ""; }); // a refusal was about the photo before
  dialog((close) => {
    const form = h("form", { class: "form done" },
      h("h2", {}, t("done.title")), h("p", {}, pick(order, "title")),
      h("label", {}, t("orders.work_done"), text),
      h("fieldset", { class: "choices" }, h("legend", {}, t("orders.repair")),
        REPAIRS.map((r) => h("label", {}, h("input", { type: "radio", name: "repair", value: r, required: true }), t(`repair.${r}`)))),
      h("label", {}, t("orders.photo"), photo, h("small", { class: "muted" }, t("done.photo_hint", { mb }))),
      error,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, t("common.cancel")),
        h("button", { type: "submit" }, t("done.submit"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const file = photo.files[0];
      if (file && file.size > order.photo_max_bytes) {
        error.textContent = t("done.photo_too_large", { size: num(file.size / MB, 1), mb });
        return;
      }
      const body = new FormData();
      body.append("work_done", text.value);
      body.append("repair", form.querySelector("input[name=repair]:checked").value);
      if (file) body.append("photo", file);
      try {
        await asStaff(() => send("POST", `/api/v1/work-orders/${order.id}/done`, body));
        close();
        onDone();
      } catch (err) {
        error.textContent = failure(err);
      }
    });
    return form;
  });
}

function actions(state, o, rerender, error, detailed) {
  const buttons = [];
  if (o.status === "open" || o.status === "assigned" || (detailed && o.status === "on_site")) {
    buttons.push(h("button", { type: "button", class: o.status === "open" ? "dispatch" : "dispatch secondary",
      onclick: () => dispatchDialog(state, { order: o }, rerender) }, t(o.status === "open" ? "orders.dispatch" : "orders.reassign")));
  }
  if (detailed && o.status === "assigned") {
    buttons.push(h("button", { type: "button", class: "on-site", onclick: async () => {
      if (!(await staffFirst())) return;
      try {
        await asStaff(() => send("POST", `/api/v1/work-orders/${o.id}/on-site`, {}));
        rerender();
      } catch (err) {
        error.textContent = failure(err);
      }
    } }, t("orders.on_site")));
  }
  if (detailed && (o.status === "assigned" || o.status === "on_site")) {
    buttons.push(h("button", { type: "button", class: "done", onclick: async () => {
      if (await staffFirst()) doneDialog(o, rerender);
    } }, t("orders.done")));
  }
  return buttons.length ? h("div", { class: "actions" }, buttons) : null;
}

function summary(state, o) {
  return h("p", { class: "muted small" }, deviceLink(state, o.device_id), ` · ${where(state, o)} · ${t("orders.opened", { t: when(o.opened) })} · `,
    h("span", { class: o.overdue && o.status !== "done" ? "error-text" : "" }, t("orders.due", { t: when(o.due) })),
    o.assignee_actor ? ` · ${said(t("orders.assignee"), pick(o.assignee_actor, "name"))}` : "");
}

function heading(o) {
  return h("div", { class: "alert-head" },
    chip(t(`trade.${o.trade}`), "info"), h("strong", { class: "grow" }, h("a", { href: `#/orders/${o.id}` }, pick(o, "title"))),
    o.overdue ? chip(t("orders.overdue"), "bad") : null,
    chip(t(`status.${o.status}`), o.status === "done" ? "ok" : o.status === "open" ? "warn" : "", { dataset: { role: "status" } }));
}

async function list({ state, params, rerender }) {
  const found = await get("/api/v1/work-orders", { trade: params.trade, status: params.status, overdue: params.overdue, limit: 500 });
  return h("div", { class: "stack" },
    filters(params, [
      select("trade", params.trade ?? "", TRADES.map((x) => [x, t(`trade.${x}`)]), t("orders.trade")),
      select("status", params.status ?? "", STATUSES.map((x) => [x, t(`status.${x}`)]), t("orders.status")),
      select("overdue", params.overdue ?? "", [["true", t("orders.overdue")]], t("orders.due_filter")),
    ], "orders"),
    found.length ? found.map((o) => {
      const error = errorLine();
      return h("article", { class: `order ${o.overdue ? "overdue" : ""} ${o.status}`, dataset: { order: o.id } },
        heading(o), summary(state, o),
        o.note ? h("p", { class: "small" }, said(t("orders.note"), o.note)) : null,
        error, actions(state, o, rerender, error, false));
    }) : h("p", { class: "muted" }, t("orders.none")));
}

function evidenceTitle(state, o) {
  const metric = metricLabel(state, o.device_id, o.evidence.metric);
  const unit = o.evidence.unit;
  if (!unit) return t("orders.evidence", { metric });
  return t("orders.evidence_unit", { metric, unit: isZh() ? (UNIT_ZH[unit] ?? unit) : unit });
}

async function drawEvidence(el, o) {
  const lib = await echarts();
  const chart = lib.getInstanceByDom(el) ?? lib.init(el, null, { renderer: "canvas" });
  const unit = o.evidence.unit;
  chart.setOption({
    grid: { left: 44, right: 16, top: 16, bottom: 28 },
    tooltip: { trigger: "axis", valueFormatter: (v) => `${num(v, 2)}${unit ? ` ${unit}` : ""}` },
    xAxis: { type: "time", axisLabel: { formatter: (v) => when(v, "time"), hideOverlap: true } },
    yAxis: { type: "value", scale: true, axisLabel: { formatter: (v) => num(v, 2) } },
    series: [{ type: "line", data: o.evidence.points, symbol: "none", step: unit ? false : "end",
      lineStyle: { color: "#1a7f5a", width: 2 }, areaStyle: { color: "rgba(26,127,90,0.12)" } }],
    animation: false,
  }, true);
  chart.resize();
}

function stepText(e) {
  const name = e.assignee ? pick(e.assignee, "name") : "";
  const trade = e.trade ? t(`trade.${e.trade}`) : "";
  switch (e.action) {
    case "work_order.open": return t("step.open", { trade });
    case "work_order.dispatch": return t("step.dispatch", { who: name, trade, due: when(e.due) })
      + (e.note ? `${isZh() ? "；" : "; "}${t("step.note", { note: e.note })}` : "");
    case "work_order.on_site": return t("step.on_site");
    case "work_order.done": return t("step.done", { repair: t(`repair.${e.repair}`), text: e.work_done });
    default: return e.note ? t("step.update", { note: e.note }) : "";
  }
}

async function photoElement(o) {
  const img = h("img", { class: "photo", alt: t("orders.photo_alt") });
  const error = errorLine();
  blob(o.photo_url).then((b) => { img.src = URL.createObjectURL(b); }, (err) => { error.textContent = failure(err); });
  return h("div", {}, img, error);
}

async function detail({ state, arg, rerender }) {
  let o;
  try {
    o = await get(`/api/v1/work-orders/${encodeURIComponent(arg)}`);
  } catch (err) {
    return h("div", { class: "card error" }, h("p", { role: "alert" }, err.status === 404 || err.status === 422 ? t("orders.not_found") : failure(err)),
      h("a", { href: "#/orders" }, t("orders.back")));
  }
  // The order is titled as its alert is now (the API's); the alert's detail says how it stands (a leak's loss so far).
  const alert = o.alert_id ? await get(`/api/v1/alerts/${o.alert_id}`).catch(() => null) : null;
  const error = errorLine();
  const chartEl = o.evidence.points.length ? h("div", { class: "chart evidence", role: "img", "aria-label": evidenceTitle(state, o) }) : null;
  const view = h("div", { class: "grid order-page", dataset: { order: o.id, status: o.status } },
    h("section", { class: `card wide order ${o.overdue ? "overdue" : ""} ${o.status}` },
      h("p", { class: "small" }, h("a", { href: "#/orders" }, `← ${t("orders.back")}`), ` · ${t("orders.number", { n: o.id })}`),
      heading(o), summary(state, o),
      o.on_site_at ? h("p", { class: "small" }, t("orders.on_site_at", { t: when(o.on_site_at) })) : null,
      o.note ? h("p", { class: "small" }, said(t("orders.note"), o.note)) : null,
      alert ? h("p", { class: "small alert-now" }, said(t("orders.alert_now"), pick(alert, "detail"))) : null,
      error, actions(state, o, rerender, error, true)),
    card(evidenceTitle(state, o), chartEl ?? h("p", { class: "muted" }, t("orders.no_evidence"), " ", deviceLink(state, o.device_id)), { class: "evidence-card" }),
    o.status === "done" ? card(t("orders.result"), [
      h("p", { class: "small muted" }, t("orders.done_at", { t: when(o.done_at) })),
      h("dl", { class: "meta" }, h("dt", {}, t("orders.work_done")), h("dd", { class: "work-done" }, o.work_done),
        h("dt", {}, t("orders.repair")), h("dd", { class: "repair" }, t(`repair.${o.repair}`))),
      o.photo_url ? await photoElement(o) : null,
    ], { class: "result" }) : null,
    card(t("orders.history"), h("ol", { class: "steps" }, o.history.map((e) => h("li", { dataset: { action: e.action } },
      h("span", { class: "muted" }, when(e.at)), " ", h("strong", { class: "who" }, pick(e.who, "name")), " ", stepText(e)))), { class: "history-card" }));
  if (chartEl) requestAnimationFrame(() => drawEvidence(chartEl, o));
  return view;
}

export default { render: (ctx) => (ctx.arg ? detail(ctx) : list(ctx)), live: ["alert", "work_order"] };
