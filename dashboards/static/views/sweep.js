// The sweep before a break (放假前检查, 拉网式检查): the sweeps the calendar asks for and those the
// head starts; per building, what the sensors say and what only a person can check, each
// 正常 / 有问题, a problem turned into a work order, the building signed; who guards the break.

import { get, send } from "../api.js";
import { addLabels, num, pick, t, when } from "../i18n.js";
import { asStaff, card, chip, dialog, failure, h, signedIn } from "../ui.js";

addLabels({
  "zh-CN": {
    "nav.sweep": "放假前检查",
    "sweep.due": "要做的检查", "sweep.none_due": "近期没有放假前检查。",
    "sweep.break": "{first} 至 {last} 放假", "sweep.open": "开始检查", "sweep.continue": "继续检查",
    "sweep.own": "其他检查（如运动会前）", "sweep.own_title": "检查名称", "sweep.own_hint": "如：运动会前检查",
    "sweep.own_start": "开始",
    "sweep.recent": "最近的检查", "sweep.progress": "已签字 {n}/{of} 栋", "sweep.started_by": "{who} 发起",
    "sweep.back": "← 全部检查",
    "sweep.roster": "假期值班护校", "sweep.guard_duty": "护校", "sweep.nobody": "无人值班",
    "sweep.sensor": "传感器", "sweep.by_hand": "人工",
    "sweep.ok": "正常", "sweep.problem": "有问题", "sweep.unchecked": "未检查",
    "sweep.to_order": "转为工单", "sweep.ordered": "已转工单 · {trade} · {status}",
    "sweep.problem_title": "这一项有问题", "sweep.note": "问题说明（可不填）", "sweep.note_hint": "如：大一班饮水机插头没拔",
    "sweep.save": "保存",
    "sweep.sign": "本楼检查完毕，签字", "sweep.sign_title": "签字确认：{b}", "sweep.sign_note": "备注（可不填）",
    "sweep.signed": "{who} {t} 签字 · 全部正常", "sweep.signed_problems": "{who} {t} 签字 · {n} 项有问题",
    "sweep.left": "还有 {n} 项未检查",
    "sweep.marked_by": "{who} {t}",
  },
  en: {
    "nav.sweep": "Pre-break check",
    "sweep.due": "Checks due", "sweep.none_due": "No pre-break check is due soon.",
    "sweep.break": "closed {first} to {last}", "sweep.open": "Start the check", "sweep.continue": "Continue",
    "sweep.own": "Another check (before sports day, say)", "sweep.own_title": "Name of the check", "sweep.own_hint": "e.g. Check before sports day",
    "sweep.own_start": "Start",
    "sweep.recent": "Recent checks", "sweep.progress": "{n} of {of} buildings signed", "sweep.started_by": "started by {who}",
    "sweep.back": "← All checks",
    "sweep.roster": "On duty over the break", "sweep.guard_duty": "guard duty", "sweep.nobody": "nobody on duty",
    "sweep.sensor": "sensor", "sweep.by_hand": "by hand",
    "sweep.ok": "In order", "sweep.problem": "Problem", "sweep.unchecked": "Not checked",
    "sweep.to_order": "Make a work order", "sweep.ordered": "Work order · {trade} · {status}",
    "sweep.problem_title": "A problem with this item", "sweep.note": "What is wrong (optional)", "sweep.note_hint": "e.g. class 1's dispenser still plugged in",
    "sweep.save": "Save",
    "sweep.sign": "Building checked, sign", "sweep.sign_title": "Sign: {b}", "sweep.sign_note": "Note (optional)",
    "sweep.signed": "Signed by {who} at {t} · all in order", "sweep.signed_problems": "Signed by {who} at {t} · {n} problem(s)",
    "sweep.left": "{n} item(s) not checked yet",
    "sweep.marked_by": "{who} {t}",
  },
});

const RESULT_TONE = { ok: "ok", problem: "bad" };

/** Runs a staff action after the login, then shows the page again; a refusal shows in a dialog. */
async function act(action, rerender) {
  if (!(await signedIn())) return;
  try {
    await asStaff(action);
    rerender();
  } catch (err) {
    dialog((close) => h("div", { class: "form" }, h("p", { class: "error-text", role: "alert" }, failure(err)),
      h("button", { type: "button", onclick: close }, t("common.close"))));
  }
}

/** A small form in a dialog: a note, then `submit(note)`. */
function noteDialog(title, label, hint, button, submit) {
  dialog((close) => {
    const note = h("textarea", { name: "note", rows: 3, maxlength: 2000, placeholder: hint });
    const error = h("p", { class: "error-text", role: "alert" });
    const form = h("form", { class: "form" }, h("h2", {}, title), h("label", {}, label, note), error,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, t("common.cancel")),
        h("button", { type: "submit" }, button)));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await submit(note.value.trim());
        close();
      } catch (err) {
        error.textContent = failure(err);
      }
    });
    return form;
  });
  document.querySelector("#dialog textarea")?.focus();
}

// ------------------------------------------------------------------------------ the list

function breakLine(closed) {
  return closed ? t("sweep.break", { first: when(closed.first, "day"), last: when(closed.last, "day") }) : "";
}

async function listView({ rerender }) {
  const s = await get("/api/v1/sweeps");
  const open = (d) => act(async () => {
    const sweep = await send("POST", `/api/v1/sweeps/due/${d.day}`);
    location.hash = `#/sweep/${sweep.id}`;
  }, () => {});
  const due = card(t("sweep.due"), s.due.length ? h("ul", { class: "list sweep-list" }, s.due.map((d) => h("li", { class: "row" },
    h("div", { class: "grow" }, h("strong", {}, pick(d, "title")),
      h("div", { class: "muted small" }, `${when(d.day, "date")}${d.closed ? ` · ${breakLine(d.closed)}` : ""}`)),
    d.id ? h("a", { class: "button", href: `#/sweep/${d.id}` }, t("sweep.continue"))
      : h("button", { type: "button", class: "open-due", onclick: () => open(d) }, t("sweep.open")))))
    : h("p", { class: "muted" }, t("sweep.none_due")));

  const title = h("input", { name: "title", maxlength: 60, required: true, placeholder: t("sweep.own_hint") });
  const own = h("form", { class: "own-sweep" }, h("label", { class: "grow" }, t("sweep.own_title"), title),
    h("button", { type: "submit" }, t("sweep.own_start")));
  own.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act(async () => {
      const sweep = await send("POST", "/api/v1/sweeps", { title: title.value.trim() });
      location.hash = `#/sweep/${sweep.id}`;
    }, () => {});
  });

  const recent = s.sweeps.length ? card(t("sweep.recent"), h("ul", { class: "list sweep-list" }, s.sweeps.map((w) => h("li", { class: "row" },
    h("div", { class: "grow" }, h("a", { href: `#/sweep/${w.id}` }, pick(w, "title")),
      h("div", { class: "muted small" }, `${when(w.day, "date")} · ${t("sweep.started_by", { who: pick(w.started_by, "name") })}`)),
    chip(t("sweep.progress", { n: num(w.signed, 0), of: num(w.buildings, 0) }), w.signed === w.buildings ? "ok" : ""))))) : null;
  return h("div", { class: "sweep-page" }, due, card(t("sweep.own"), own), recent);
}

// ------------------------------------------------------------------------- one sweep

function itemRow(sweep, b, item, rerender) {
  const base = `/api/v1/sweeps/${sweep.id}/buildings/${b.id}/items/${encodeURIComponent(item.id)}`;
  const signed = Boolean(b.signed);
  const result = item.result ? chip(t(`sweep.${item.result}`), RESULT_TONE[item.result], { dataset: { role: "result" } })
    : chip(t("sweep.unchecked"), "warn", { dataset: { role: "result" } });
  // A sensor that vouches for its item needs nobody's click; a person marks the rest.
  const quiet = signed || (item.sensed && item.sensor_result === "ok" && !item.marked_by);
  const buttons = quiet ? null : h("div", { class: "item-actions" },
    h("button", { type: "button", class: "secondary mark-ok", onclick: () => act(() => send("POST", base, { result: "ok" }), rerender) }, t("sweep.ok")),
    h("button", { type: "button", class: "secondary mark-problem", onclick: async () => {
      if (await signedIn()) {
        noteDialog(t("sweep.problem_title"), t("sweep.note"), t("sweep.note_hint"), t("sweep.save"), async (note) => {
          await asStaff(() => send("POST", base, { result: "problem", note }));
          rerender();
        });
      }
    } }, t("sweep.problem")),
    item.result === "problem" && !item.order
      ? h("button", { type: "button", class: "to-order", onclick: () => act(() => send("POST", `${base}/work-order`, {}), rerender) }, t("sweep.to_order"))
      : null);
  return h("li", { class: `sweep-item ${item.result ?? "unchecked"}`, dataset: { item: item.id } },
    h("div", { class: "sweep-item-head" },
      h("span", { class: "grow" }, pick(item, "text")),
      h("small", { class: "muted kind" }, t(item.sensed ? "sweep.sensor" : "sweep.by_hand")), result),
    item.note ? h("p", { class: "small note" }, item.note) : null,
    item.marked_by ? h("p", { class: "muted small" }, t("sweep.marked_by", { who: pick(item.marked_by, "name"), t: when(item.marked_at, "time") })) : null,
    item.order ? h("p", { class: "small" }, h("a", { href: "#/orders", class: "ordered" },
      t("sweep.ordered", { trade: t(`trade.${item.order.trade}`), status: t(`status.${item.order.status}`) }))) : null,
    buttons);
}

function checklist(sweep, b, rerender) {
  const left = b.items.filter((i) => !i.result).length;
  const problems = b.items.filter((i) => i.result === "problem").length;
  const status = b.signed
    ? chip(t(b.signed.problems ? "sweep.signed_problems" : "sweep.signed",
      { who: pick(b.signed.by, "name"), t: when(b.signed.at, "time"), n: num(b.signed.problems, 0) }), b.signed.problems ? "bad" : "ok", { dataset: { role: "signed" } })
    : chip(left ? t("sweep.left", { n: num(left, 0) }) : problems ? `${num(problems, 0)} ${t("sweep.problem")}` : t("sweep.ok"), left ? "warn" : problems ? "bad" : "ok");
  const sign = b.signed ? null : h("div", { class: "actions" }, h("button", { type: "button", class: "sign", onclick: async () => {
    if (await signedIn()) {
      noteDialog(t("sweep.sign_title", { b: b.name }), t("sweep.sign_note"), "", t("sweep.sign"), async (note) => {
        await asStaff(() => send("POST", `/api/v1/sweeps/${sweep.id}/buildings/${b.id}/sign`, { note }));
        rerender();
      });
    }
  } }, t("sweep.sign")));
  return card(null, [
    h("div", { class: "closing-head" }, h("h2", {}, b.name), status),
    b.signed?.note ? h("p", { class: "small" }, b.signed.note) : null,
    h("ul", { class: "sweep-items" }, b.items.map((i) => itemRow(sweep, b, i, rerender))),
    sign,
  ], { class: `sweep-building ${b.signed ? `signed${b.signed.problems ? " problems" : ""}` : ""}`, dataset: { building: b.id } });
}

function roster(sweep) {
  if (!sweep.roster.length) return null;
  return card(t("sweep.roster"), h("ul", { class: "list roster" }, sweep.roster.map((r) => h("li", { class: "row" },
    h("span", { class: "grow" }, r.first === r.last ? when(r.first, "day") : `${when(r.first, "day")} – ${when(r.last, "day")}`),
    r.guard_duty ? chip(t("sweep.guard_duty"), "info") : null,
    h("strong", {}, r.on_duty || t("sweep.nobody"))))), { class: "roster-card" });
}

async function sweepView({ arg, rerender }) {
  const sweep = await get(`/api/v1/sweeps/${encodeURIComponent(arg)}`);
  const head = card(null, [
    h("a", { href: "#/sweep", class: "small" }, t("sweep.back")),
    h("h1", {}, pick(sweep, "title")),
    h("p", { class: "muted" }, [when(sweep.day, "date"), sweep.closed ? breakLine(sweep.closed) : null,
      t("sweep.started_by", { who: pick(sweep.started_by, "name") })].filter(Boolean).join(" · ")),
  ], { class: "sweep-head" });
  return h("div", { class: "sweep-page" }, head,
    h("div", { class: "grid sweep-buildings" }, sweep.buildings.map((b) => checklist(sweep, b, rerender))), roster(sweep));
}

export default {
  render: (ctx) => (ctx.arg ? sweepView(ctx) : listView(ctx)),
  live: ["alert", "work_order"],
};
