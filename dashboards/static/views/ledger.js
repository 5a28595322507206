// The safety ledger (安全台账): one day's safety record as people keep it. What is still blank
// comes first, with 正常 / 有问题 for each; then the problems, each with its rectification
// (存在问题 / 整改措施 / 整改结果); then everything the sensors or people vouched for; at the
// foot the day's three signatures. Route: #/ledger/<YYYY-MM-DD>, today by default.

import { download, get, send } from "../api.js";
import { addLabels, isZh, language, pick, t, when } from "../i18n.js";
import { card, chip, dialog, failure, h, saveFile, signedIn } from "../ui.js";

addLabels({
  "zh-CN": {
    "nav.ledger": "安全台账",
    // The statuses: the same words as the printed record (gateway/reports/safety_layout.py STATUS).
    "ledger.status.pass": "正常", "ledger.status.fail": "异常", "ledger.status.manual": "待检查",
    "ledger.status.done": "已检查", "ledger.status.not_required": "无需检查", "ledger.status.pending": "未到时间",
    "ledger.prev": "前一天", "ledger.next": "后一天", "ledger.today": "今天", "ledger.date": "日期",
    "ledger.pdf": "打印 / 下载 PDF",
    "ledger.future": "这一天还没到，没有记录。",
    "ledger.partial": "当日尚未结束：记录截至 {t}。签字只对签字时已判定的内容负责。",
    "ledger.go": "去「{page}」登记", "nav.device": "设备页", "ledger.blank": "台账空白：还有 {n} 项待检查", "ledger.blank_hint": "请检查后逐项登记：正常，或写明存在的问题。",
    "ledger.no_blank": "没有空白项：每一项都已检查或由传感器判定。",
    "ledger.fails": "异常项目（{n} 项）：请写明整改", "ledger.others": "其他项目",
    "ledger.ok": "正常", "ledger.problem_button": "有问题",
    "ledger.problem_title": "登记问题", "ledger.problem_hint": "例如：三楼走廊灯没关",
    "ledger.record": "登记",
    "ledger.checked_by": "{who} {t} 检查", "ledger.sensors": "自动监测",
    "ledger.stage.problem": "存在问题", "ledger.stage.measure": "整改措施", "ledger.stage.outcome": "整改结果",
    "ledger.hint.problem": "发现了什么问题", "ledger.hint.measure": "采取了什么措施", "ledger.hint.outcome": "整改后的结果（可以以后再填）",
    "ledger.by": "{who} · {t}", "ledger.save": "保存整改", "ledger.saved": "已保存",
    "ledger.nothing_changed": "没有改动。",
    "ledger.signatures": "签字", "ledger.role.inspector": "检查人", "ledger.role.responsible": "负责人",
    "ledger.role.review": "园长（审核）", "ledger.sign": "签字（{role}）",
    "ledger.sign_rules": "检查人在所有项目都检查后签字；负责人在检查人之后、每个异常项目都有整改措施时签字；园长最后审核。同一人一天只能签一处。",
    "ledger.alerts": "当日告警（{n} 条）",
    "ledger.fact.fridge": "最低 {lo} °C · 最高 {hi} °C · 平均 {mean} °C · 超出范围 {out} 分钟",
    "ledger.fact.uv": "运行 {ran} 分钟，要求 {need} 分钟",
    "ledger.fact.door": "开门 {n} 次 · 闭园后开着 {open} 分钟",
    "ledger.fact.water": "闭园后流水 {min} 分钟 · 跑水流失 {m3} m³",
    "ledger.fact.power": "上限 {limit} W · 超出 {min} 分钟 · 浪费 {kwh} kWh",
  },
  en: {
    "nav.ledger": "Safety ledger",
    "ledger.status.pass": "OK", "ledger.status.fail": "Problem", "ledger.status.manual": "To check",
    "ledger.status.done": "Checked", "ledger.status.not_required": "Not required", "ledger.status.pending": "Not due yet",
    "ledger.prev": "Previous day", "ledger.next": "Next day", "ledger.today": "Today", "ledger.date": "Date",
    "ledger.pdf": "Print / download PDF",
    "ledger.future": "This day has not come yet: there is no record.",
    "ledger.partial": "The day is not over: judged up to {t}. A signature vouches for what was judged when it was given.",
    "ledger.go": "Register it in “{page}”", "nav.device": "the device's page", "ledger.blank": "Blank in the ledger: {n} items to check", "ledger.blank_hint": "Check each and register it: OK, or say what the problem is.",
    "ledger.no_blank": "Nothing blank: every item is checked, by a person or by its sensors.",
    "ledger.fails": "Problems ({n}): write their rectification", "ledger.others": "Other items",
    "ledger.ok": "OK", "ledger.problem_button": "Problem",
    "ledger.problem_title": "Register a problem", "ledger.problem_hint": "e.g. the third-floor corridor light was on",
    "ledger.record": "Register",
    "ledger.checked_by": "checked by {who}, {t}", "ledger.sensors": "Sensors",
    "ledger.stage.problem": "Problem", "ledger.stage.measure": "Measure", "ledger.stage.outcome": "Outcome",
    "ledger.hint.problem": "What was wrong", "ledger.hint.measure": "What was done about it", "ledger.hint.outcome": "The result (may come later)",
    "ledger.by": "{who} · {t}", "ledger.save": "Save rectification", "ledger.saved": "Saved",
    "ledger.nothing_changed": "Nothing changed.",
    "ledger.signatures": "Signatures", "ledger.role.inspector": "Inspector", "ledger.role.responsible": "Person responsible",
    "ledger.role.review": "Principal (review)", "ledger.sign": "Sign as {role}",
    "ledger.sign_rules": "The inspector signs once every item is checked; the person responsible after the inspector, once every problem has a measure; the principal reviews last. One person signs one role of a day.",
    "ledger.alerts": "Alerts of the day ({n})",
    "ledger.fact.fridge": "lowest {lo} °C · highest {hi} °C · mean {mean} °C · {out} min out of range",
    "ledger.fact.uv": "ran {ran} min of {need} min required",
    "ledger.fact.door": "opened {n} times · open {open} min after hours",
    "ledger.fact.water": "{min} min of flow after hours · {m3} m³ lost to leaks",
    "ledger.fact.power": "limit {limit} W · {min} min above · {kwh} kWh wasted",
  },
});

const TONE = { pass: "ok", fail: "bad", manual: "warn", done: "ok", not_required: "", pending: "info" };
const ROLES = ["inspector", "responsible", "review"];
const STAGES = ["problem", "measure", "outcome"];
const SEVERITY_TONE = { critical: "bad", major: "bad", minor: "warn", warning: "info" };

/** The site's local date today, YYYY-MM-DD. */
function today(timeZone) {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
}

function shift(day, days) {
  const d = new Date(`${day}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

const fixed = (v, digits = 1) => (v == null ? "–" : Number(v).toFixed(digits).replace(/\.0+$/, ""));

/** The sensors' evidence in words, from the item's facts. */
function evidence(facts) {
  if (!facts) return null;
  const words = {
    fridge: () => t("ledger.fact.fridge", { lo: fixed(facts.lowest_c), hi: fixed(facts.highest_c), mean: fixed(facts.mean_c), out: fixed(facts.minutes_out) }),
    uv: () => t("ledger.fact.uv", { ran: fixed(facts.minutes_on), need: fixed(facts.minutes_required) }),
    door: () => t("ledger.fact.door", { n: facts.openings, open: fixed(facts.minutes_open) }),
    water: () => t("ledger.fact.water", { min: fixed(facts.minutes_flowing), m3: fixed(facts.loss_m3, 3) }),
    power: () => (facts.limit_w == null ? null : t("ledger.fact.power", { limit: fixed(facts.limit_w, 0), min: fixed(facts.minutes_above), kwh: fixed(facts.waste_kwh, 2) })),
  }[facts.kind];
  const text = words?.();
  return text ? h("p", { class: "small muted evidence" }, text) : null;
}

/** Runs a write after the person has logged in; shows the refusal in `error`. */
async function act(error, write, done) {
  error.textContent = "";
  if (!(await signedIn())) return;
  try {
    await write();
    done();
  } catch (err) {
    error.textContent = failure(err);
  }
}

function itemHead(item) {
  return h("div", { class: "ledger-head" },
    chip(t(`ledger.status.${item.status}`), TONE[item.status], { dataset: { role: "status" } }),
    h("strong", { class: "grow" }, pick(item, "check"), item.subject ? h("span", { class: "muted subject" }, ` ${item.subject}`) : null));
}

function who(item) {
  const c = item.completion;
  if (c) return h("p", { class: "small who" }, t("ledger.checked_by", { who: pick(c.by, "name"), t: when(c.at) }), c.note ? `${isZh() ? "：" : ": "}${c.note}` : "");
  const judged = ["pass", "fail", "pending"].includes(item.status);
  return item.device && judged ? h("p", { class: "small muted who" }, t("ledger.sensors")) : null;
}

function problemDialog(item, base, rerender) {
  dialog((close) => {
    const note = h("textarea", { name: "note", rows: 3, maxlength: 2000, required: true, placeholder: t("ledger.problem_hint") });
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { class: "form" },
      h("h2", {}, t("ledger.problem_title")), h("p", {}, pick(item, "check"), item.subject ? ` · ${item.subject}` : ""),
      h("label", {}, t("ledger.stage.problem"), note), error,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, t("common.cancel")),
        h("button", { type: "submit" }, t("ledger.record"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await send("POST", `${base}/items/${encodeURIComponent(item.id)}`, { result: "problem", note: note.value });
        close();
        rerender();
      } catch (err) {
        error.textContent = failure(err);
      }
    });
    return form;
  });
  document.querySelector("#dialog textarea")?.focus();
}

/** Where a register's item is kept: its page, or its device's (a UV lamp's tube care). */
function registerHref(item) {
  return item.page === "device" && item.device ? `#/device/${encodeURIComponent(item.device)}` : `#/${item.page}`;
}

function blankItem(item, base, rerender) {
  const error = h("p", { class: "error-text", role: "alert" });
  // A register's item (留样, a fire round, a sweep) is kept on its own page, not ticked here.
  const actions = item.page
    ? h("div", { class: "actions" }, h("a", { class: "button", href: registerHref(item) }, t("ledger.go", { page: t(`nav.${item.page}`) })))
    : h("div", { class: "actions" },
      h("button", { type: "button", class: "problem secondary", onclick: async () => { if (await signedIn()) problemDialog(item, base, rerender); } },
        t("ledger.problem_button")),
      h("button", { type: "button", class: "ok", onclick: () => act(error, () => send("POST", `${base}/items/${encodeURIComponent(item.id)}`, { result: "ok", note: "" }), rerender) },
        t("ledger.ok")));
  return h("article", { class: "ledger-item blank", dataset: { item: item.id, status: item.status } },
    itemHead(item), h("p", { class: "small" }, pick(item, "detail")), evidence(item.facts), actions, error);
}

function rectification(item, base, rerender) {
  const r = item.rectification ?? {};
  const error = h("p", { class: "error-text", role: "alert" });
  const areas = {};
  const fields = STAGES.map((stage) => {
    const entry = r[stage];
    // A sensor's failure: what it shows is the problem unless someone wrote one.
    const text = entry?.text ?? (stage === "problem" && !item.completion ? pick(item, "detail") : "");
    areas[stage] = h("textarea", { name: stage, rows: stage === "problem" ? 3 : 2, maxlength: 2000, placeholder: t(`ledger.hint.${stage}`) }, text);
    return h("label", { class: "stage", dataset: { stage } }, t(`ledger.stage.${stage}`), areas[stage],
      entry ? h("small", { class: "muted by" }, t("ledger.by", { who: pick(entry.by, "name"), t: when(entry.at) })) : null);
  });
  // Only what changed is sent: each stage keeps who wrote it.
  const save = async () => {
    const body = Object.fromEntries(STAGES.map((stage) => [stage, areas[stage].value.trim()])
      .filter(([stage, value]) => value && value !== (r[stage]?.text ?? "")));
    if (!Object.keys(body).length) {
      error.textContent = t("ledger.nothing_changed");
      return;
    }
    await act(error, () => send("POST", `${base}/items/${encodeURIComponent(item.id)}/rectification`, body), rerender);
  };
  return h("div", { class: "rectification form" }, fields, error,
    h("div", { class: "actions" }, h("button", { type: "button", class: "save", onclick: save }, t("ledger.save"))));
}

function failedItem(item, base, rerender) {
  return h("article", { class: "ledger-item failed", dataset: { item: item.id, status: item.status } },
    itemHead(item), h("p", { class: "small" }, pick(item, "detail")), evidence(item.facts), who(item),
    rectification(item, base, rerender));
}

function plainItem(item) {
  return h("li", { class: `ledger-row ${item.status}`, dataset: { item: item.id, status: item.status } },
    itemHead(item), h("p", { class: "small" }, pick(item, "detail")), evidence(item.facts), who(item));
}

function signatures(r, base, rerender) {
  const error = h("p", { class: "error-text", role: "alert", dataset: { role: "sign-error" } });
  return card(t("ledger.signatures"), [
    h("div", { class: "signs" }, ROLES.map((role) => {
      const s = r.signatures[role];
      return h("div", { class: `sign ${s ? "signed" : ""}`, dataset: { sign: role } },
        h("span", { class: "sign-label" }, `${t(`ledger.role.${role}`)}${isZh() ? "：" : ": "}`),
        s ? h("span", { class: "sign-name" }, h("strong", {}, pick(s.by, "name")), h("small", { class: "muted" }, ` ${when(s.at)}`))
          : h("button", {
            type: "button", onclick: () => act(error, () => send("POST", `${base}/signatures/${role}`, {}), rerender),
          }, t("ledger.sign", { role: t(`ledger.role.${role}`) })));
    })),
    error,
    h("p", { class: "small muted" }, t("ledger.sign_rules")),
  ], { class: "ledger-signatures" });
}

/** The printed record: fetched with the login's token (a link would not carry it). */
async function printed(day) {
  const { blob, filename } = await download("/api/v1/reports/safety", { date: day, format: "pdf", lang: language() },
    `safety-${day}.pdf`);
  saveFile(blob, filename);
}

function dayNav(day, now) {
  const input = h("input", { type: "date", name: "date", value: day, max: now, "aria-label": t("ledger.date") });
  input.addEventListener("change", () => { if (input.value) location.hash = `#/ledger/${input.value}`; });
  return h("nav", { class: "ledger-nav" },
    h("a", { class: "prev", href: `#/ledger/${shift(day, -1)}` }, `‹ ${t("ledger.prev")}`),
    input,
    day < now ? h("a", { class: "next", href: `#/ledger/${shift(day, 1)}` }, `${t("ledger.next")} ›`) : null,
    day !== now ? h("a", { class: "today", href: `#/ledger/${now}` }, t("ledger.today")) : null,
    h("button", { type: "button", class: "secondary pdf", onclick: () => printed(day).catch(() => {}) }, t("ledger.pdf")));
}

async function ledger({ state, arg, rerender }) {
  const now = today(state.site.timezone);
  const day = /^\d{4}-\d{2}-\d{2}$/.test(arg) ? arg : now;
  if (day > now) return h("div", { class: "stack ledger" }, dayNav(day, now), h("p", { class: "muted" }, t("ledger.future")));
  const r = await get("/api/v1/reports/safety", { date: day });
  const base = `/api/v1/reports/safety/${day}`;
  const blank = r.items.filter((i) => i.status === "manual");
  const failed = r.items.filter((i) => i.status === "fail");
  const others = r.items.filter((i) => i.status !== "manual" && i.status !== "fail");
  const name = pick(r.day, "name");
  const counts = Object.entries(r.counts).filter(([, n]) => n).map(([s, n]) => chip(`${t(`ledger.status.${s}`)} ${n}`, TONE[s]));
  return h("div", { class: "stack ledger", dataset: { day } },
    dayNav(day, now),
    h("header", { class: "ledger-title" },
      h("h1", {}, `${when(r.day.date, "date")} · ${pick(r.day, "kind")}${name ? ` · ${name}` : ""}`),
      h("div", { class: "counts" }, counts),
      r.complete ? null : h("p", { class: "small muted" }, t("ledger.partial", { t: when(r.as_of, "time") }))),
    blank.length
      ? card(t("ledger.blank", { n: blank.length }), [h("p", { class: "small" }, t("ledger.blank_hint")),
        h("div", { class: "stack" }, blank.map((i) => blankItem(i, base, rerender)))], { class: "ledger-blank" })
      : h("p", { class: "ledger-complete" }, t("ledger.no_blank")),
    failed.length ? card(t("ledger.fails", { n: failed.length }),
      h("div", { class: "stack" }, failed.map((i) => failedItem(i, base, rerender))), { class: "ledger-failed" }) : null,
    r.alerts.length ? card(t("ledger.alerts", { n: r.alerts.length }), h("ul", { class: "list" }, r.alerts.map((a) => h("li", { class: "row" },
      chip(t(`severity.${a.severity}`), SEVERITY_TONE[a.severity]), h("span", { class: "grow" }, pick(a, "title")),
      chip(t(`state.${a.state}`), a.state === "active" ? "bad" : a.state === "cleared" ? "ok" : "info"))))) : null,
    card(t("ledger.others"), h("ul", { class: "ledger-list" }, others.map(plainItem)), { class: "ledger-others" }),
    signatures(r, base, rerender));
}

// Not refreshed by the live stream: a refresh would wipe what someone is typing.
export default { render: ledger, live: [] };
