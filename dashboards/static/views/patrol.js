// The fire-safety patrol (消防巡查): the day's rounds and their state; a round opened shows its
// items to mark 正常 or 有问题 (with what the problem is), then the supervisor's signature.
// Phone first: the guard walks the round with a phone in hand.

import { get, send, session } from "../api.js";
import { addLabels, pick, t, when } from "../i18n.js";
import { asStaff, card, chip, failure, h, signedIn } from "../ui.js";

addLabels({
  "zh-CN": {
    "nav.patrol": "消防巡查",
    "patrol.title": "{t} 消防巡查",
    "patrol.hint": "每轮逐项检查：有问题写明情况。巡查人提交后，由另一位负责人审核签字。",
    "patrol.none": "这一天没有安排消防巡查。",
    "patrol.prev": "前一天", "patrol.next": "后一天", "patrol.today": "今天",
    "patrol.night": "夜间",
    "patrol.open": "巡查登记", "patrol.view": "查看",
    "patrol.back": "返回当天巡查",
    "patrol.ok": "正常", "patrol.problem": "有问题",
    "patrol.note": "问题说明", "patrol.note_hint": "写明位置和情况，例如：二楼走廊灭火器压力不足",
    "patrol.as": "巡查人：{name}（当前登录）",
    "patrol.submit": "提交巡查",
    "patrol.note_needed": "「{item}」有问题：请写明是什么问题。",
    "patrol.by": "巡查人：{name} · {t}",
    "patrol.signed": "审核签字：{name} · {t}",
    "patrol.unsigned": "待负责人审核签字（不能由巡查人本人签字）。",
    "patrol.sign": "审核签字",
    "patrol.not_due": "这一轮还没到时间。",
    "patrol.login": "请先登录，再登记巡查或审核签字。",
    "patrol.status.done": "已巡查", "patrol.status.fail": "有问题", "patrol.status.manual": "未按时巡查",
    "patrol.status.pending": "待巡查", "patrol.status.not_required": "无需巡查",
    "patrol.signature.done": "已签字", "patrol.signature.todo": "待审核",
  },
  en: {
    "nav.patrol": "Fire patrol",
    "patrol.title": "{t} fire patrol",
    "patrol.hint": "Check each item of the round and say what any problem is. Once the patroller has submitted it, another person in charge signs it.",
    "patrol.none": "No fire patrol is scheduled on this day.",
    "patrol.prev": "Previous day", "patrol.next": "Next day", "patrol.today": "Today",
    "patrol.night": "Night",
    "patrol.open": "Record", "patrol.view": "View",
    "patrol.back": "Back to the day's rounds",
    "patrol.ok": "In order", "patrol.problem": "Problem",
    "patrol.note": "What is wrong", "patrol.note_hint": "Where and what, e.g. extinguisher on the 2nd-floor corridor low on pressure",
    "patrol.as": "Patroller: {name} (logged in)",
    "patrol.submit": "Submit patrol",
    "patrol.note_needed": "“{item}” has a problem: please say what it is.",
    "patrol.by": "Patrolled by {name} · {t}",
    "patrol.signed": "Signed by {name} · {t}",
    "patrol.unsigned": "Awaiting the signature of a person in charge (not the patroller).",
    "patrol.sign": "Sign as supervisor",
    "patrol.not_due": "This round is not due yet.",
    "patrol.login": "Please log in first to record a patrol or sign it.",
    "patrol.status.done": "Patrolled", "patrol.status.fail": "Problem found", "patrol.status.manual": "Missed",
    "patrol.status.pending": "To do", "patrol.status.not_required": "Not required",
    "patrol.signature.done": "Signed", "patrol.signature.todo": "To sign",
  },
});

const TONE = { done: "ok", fail: "bad", manual: "warn", pending: "info", not_required: "" };

function statusChip(round) {
  return chip(t(`patrol.status.${round.status}`), TONE[round.status], { dataset: { role: "status" } });
}

function signatureChip(round) {
  if (!round.patrol) return null;
  return round.patrol.supervisor ? chip(t("patrol.signature.done"), "ok") : chip(t("patrol.signature.todo"), "warn");
}

function dayLink(date, offset) {
  const d = new Date(`${date}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + offset);
  return `#/patrol?date=${d.toISOString().slice(0, 10)}`;
}

function roundHref(day, round) {
  return `#/patrol/${round.id}?date=${day.date}`;
}

/** Opens a round to record it: the login comes first, before anything is ticked. */
async function openRound(day, round) {
  if (await signedIn(t("patrol.login"))) location.hash = roundHref(day, round);
}

function roundRow(day, round) {
  const action = round.patrol
    ? h("a", { class: "button secondary", href: roundHref(day, round) }, t("patrol.view"))
    : round.recordable ? h("button", { type: "button", onclick: () => openRound(day, round) }, t("patrol.open")) : null;
  return h("article", { class: `patrol-round ${round.status}`, dataset: { round: round.id, status: round.status } },
    h("div", { class: "patrol-round-head" },
      h("span", { class: "patrol-time" }, round.at),
      round.night ? chip(t("patrol.night"), "info") : null,
      h("span", { class: "grow" }),
      statusChip(round), signatureChip(round)),
    h("p", { class: "small" }, pick(round, "detail")),
    action ? h("div", { class: "actions" }, action) : null);
}

async function dayView({ params }) {
  const day = await get("/api/v1/fire-patrols", { date: params.date });
  return h("div", { class: "stack patrol" },
    card(null, [
      h("div", { class: "patrol-day" },
        h("a", { href: dayLink(day.date, -1), "aria-label": t("patrol.prev") }, "‹"),
        h("h1", { class: "grow" }, when(`${day.date}T12:00:00Z`, "date")),
        h("a", { href: dayLink(day.date, 1), "aria-label": t("patrol.next") }, "›")),
      day.date !== day.today ? h("p", { class: "small" }, h("a", { href: "#/patrol" }, t("patrol.today"))) : null,
      h("p", { class: "muted small" }, t("patrol.hint")),
    ]),
    day.rounds.length ? day.rounds.map((r) => roundRow(day, r)) : h("p", { class: "muted" }, t("patrol.none")));
}

function toggle(name, onChange) {
  const option = (value, label, tone) => h("label", { class: `toggle ${tone}` },
    h("input", { type: "radio", name, value, checked: value === "ok", onchange: onChange }), h("span", {}, label));
  return h("div", { class: "toggles", role: "radiogroup" },
    option("ok", t("patrol.ok"), "ok"), option("problem", t("patrol.problem"), "bad"));
}

function patrolForm(day, round, rerender) {
  const error = h("p", { class: "error-text", role: "alert" });
  const rows = day.items.map((item) => {
    const note = h("textarea", {
      name: `note-${item.id}`, rows: 2, maxlength: 500, placeholder: t("patrol.note_hint"), hidden: true,
      oninput: () => { error.textContent = ""; },
    });
    const noteLabel = h("label", { class: "patrol-note", hidden: true }, t("patrol.note"), note);
    const choice = toggle(`result-${item.id}`, (ev) => {
      const problem = ev.target.value === "problem";
      noteLabel.hidden = note.hidden = !problem;
      if (problem) note.focus();
    });
    return { item, choice, note, el: h("li", { class: "patrol-item", dataset: { item: item.id } },
      h("span", { class: "patrol-item-name" }, pick(item, "name")), choice, noteLabel) };
  });
  const who = session();
  const form = h("form", { class: "form patrol-form" },
    h("ol", { class: "patrol-items" }, rows.map((r) => r.el)),
    who && who.role !== "viewer" ? h("p", { class: "muted small" }, t("patrol.as", { name: who.name })) : null,
    error,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "wide-button" }, t("patrol.submit"))));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const items = rows.map(({ item, choice, note }) => ({
      id: item.id, result: choice.querySelector("input:checked").value, note: note.value.trim(),
    }));
    const blank = rows.find((r, i) => items[i].result === "problem" && !items[i].note);
    if (blank) {
      error.textContent = t("patrol.note_needed", { item: pick(blank.item, "name") });
      blank.note.focus();
      return;
    }
    if (!(await signedIn(t("patrol.login")))) return;
    try {
      await asStaff(() => send("POST", `/api/v1/fire-patrols/${day.date}/${round.id}`, { items }));
      rerender();
    } catch (err) {
      error.textContent = failure(err);
    }
  });
  return form;
}

function patrolRecord(day, round, rerender) {
  const p = round.patrol;
  const error = h("p", { class: "error-text", role: "alert" });
  const sign = h("button", {
    type: "button", class: "sign", onclick: async () => {
      error.textContent = "";
      if (!(await signedIn(t("patrol.login")))) return;
      try {
        await asStaff(() => send("POST", `/api/v1/fire-patrols/${day.date}/${round.id}/signature`, {}));
        rerender();
      } catch (err) {
        error.textContent = failure(err);
      }
    },
  }, t("patrol.sign"));
  return h("div", { class: "stack patrol-record" },
    h("ol", { class: "patrol-items" }, p.items.map((c) => h("li", { class: `patrol-item ${c.result}`, dataset: { item: c.id } },
      h("span", { class: "patrol-item-name" }, pick(c, "name")),
      chip(t(`patrol.${c.result}`), c.result === "ok" ? "ok" : "bad"),
      c.note ? h("p", { class: "patrol-problem" }, c.note) : null))),
    h("p", { class: "small" }, t("patrol.by", { name: pick(p.patroller, "name"), t: when(p.patrolled_at) })),
    p.supervisor
      ? h("p", { class: "small", dataset: { role: "signature" } }, t("patrol.signed", { name: pick(p.supervisor, "name"), t: when(p.supervised_at) }))
      : [h("p", { class: "muted small" }, t("patrol.unsigned")), error, h("div", { class: "actions" }, sign)]);
}

async function roundView({ arg, params, rerender }) {
  const day = await get("/api/v1/fire-patrols", { date: params.date });
  const round = day.rounds.find((r) => r.id === arg);
  const back = h("a", { href: params.date ? `#/patrol?date=${day.date}` : "#/patrol", class: "small" }, `‹ ${t("patrol.back")}`);
  if (!round) return h("div", { class: "stack patrol" }, back, h("p", { class: "muted" }, t("patrol.none")));
  const body = round.patrol ? patrolRecord(day, round, rerender)
    : round.recordable ? patrolForm(day, round, rerender) : h("p", { class: "muted" }, t("patrol.not_due"));
  return h("div", { class: "stack patrol", dataset: { round: round.id } },
    back,
    card(null, [
      h("div", { class: "patrol-round-head" },
        h("h1", { class: "grow" }, t("patrol.title", { t: round.at })),
        round.night ? chip(t("patrol.night"), "info") : null, statusChip(round), signatureChip(round)),
      h("p", { class: "muted small" }, when(`${day.date}T12:00:00Z`, "date")),
      body,
    ]));
}

// Not fetched again on live events: that would wipe a round half filled in.
export default {
  render: (ctx) => (ctx.arg ? roundView(ctx) : dayView(ctx)),
  live: [],
};
