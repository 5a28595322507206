// 新设备: what reached the broker from devices the site file does not know, with what each
// sent, the kind the gateway suggests and why; 采用 opens the add-device form prefilled from
// the suggestion, 忽略 puts it aside (and 恢复 brings it back). The broker's ACL lines and
// dynamic-security commands for it are in a block to copy.

import { HttpError, get, send } from "../../api.js";
import { addLabels, num, pick, t, when } from "../../i18n.js";
import { failure, h, refill } from "../../ui.js";

addLabels({
  "zh-CN": {
    "inbox.none": "没有发现新设备。设备接到 MQTT 服务器后，会出现在这里。", "inbox.unavailable": "这个网关还不能发现新设备。",
    "inbox.seen": "首次 {first}，最近 {last}，共 {n} 条消息", "inbox.suggested": "建议类型：{kind}",
    "inbox.no_suggestion": "认不出是哪类设备，可手动添加", "inbox.sent": "它发来的内容", "inbox.acl": "MQTT 服务器权限配置（复制给管理服务器的人）",
    "inbox.adopt": "采用", "inbox.dismiss": "忽略", "inbox.restore": "恢复", "inbox.dismissed": "已忽略的设备",
    "inbox.copy": "复制", "inbox.copied": "已复制", "inbox.by_hand": "手动添加",
  },
  en: {
    "inbox.none": "No new devices found. A device appears here once it sends to the MQTT broker.", "inbox.unavailable": "This gateway cannot discover new devices yet.",
    "inbox.seen": "first {first}, last {last}, {n} messages", "inbox.suggested": "Suggested kind: {kind}",
    "inbox.no_suggestion": "Not recognised: add it by hand", "inbox.sent": "What it sent", "inbox.acl": "Broker permissions (for whoever runs the broker)",
    "inbox.adopt": "Adopt", "inbox.dismiss": "Dismiss", "inbox.restore": "Restore", "inbox.dismissed": "Dismissed devices",
    "inbox.copy": "Copy", "inbox.copied": "Copied", "inbox.by_hand": "Add by hand",
  },
});

function copyBlock(lines) {
  const text = lines.join("\n");
  const button = h("button", { type: "button", class: "secondary copy", onclick: async () => {
    await navigator.clipboard.writeText(text);
    button.textContent = t("inbox.copied");
  } }, t("inbox.copy"));
  return h("div", { class: "copy-block" }, h("pre", {}, text), button);
}

/** A message as sent, laid out when it is whole JSON (a long one is cut, and shown as it is). */
function readable(payload) {
  try {
    return JSON.stringify(JSON.parse(payload), null, 2);
  } catch {
    return payload;
  }
}

function entry(ctx, d, redraw) {
  const line = h("p", { class: "error-text", role: "alert" });
  const act = (what) => async () => {
    try {
      await send("POST", `/api/v1/admin/discovered/${encodeURIComponent(d.key)}/${what}`, {});
      redraw();
    } catch (err) {
      line.textContent = failure(err);
    }
  };
  const s = d.suggestion;
  return h("article", { class: "card discovered", dataset: { key: d.key, state: d.state } },
    h("h2", {}, pick(d, "title")),
    h("p", { class: "muted small" }, t("inbox.seen", { first: when(d.first_seen), last: when(d.last_seen), n: num(d.messages, 0) })),
    h("p", {}, s ? t("inbox.suggested", { kind: pick(s, "kind") }) : t("inbox.no_suggestion")),
    pick(d, "why") ? h("p", { class: "small" }, pick(d, "why")) : null,
    // What a device sent is its own (English keys, ids): folded, for whoever wants to look.
    h("details", {}, h("summary", {}, t("inbox.sent")),
      d.samples.map((x) => h("div", { class: "sample-message" }, h("p", { class: "muted small" }, when(x.at)),
        h("pre", {}, `${x.topic}\n${readable(x.payload)}`)))),
    d.acl.length || d.dynsec.length ? h("details", {}, h("summary", {}, t("inbox.acl")), copyBlock([...d.acl, ...d.dynsec])) : null,
    line,
    ctx.readOnly ? null : h("div", { class: "actions" },
      d.state === "dismissed"
        ? h("button", { type: "button", class: "secondary restore", onclick: act("restore") }, t("inbox.restore"))
        : [h("button", { type: "button", class: "secondary dismiss", onclick: act("dismiss") }, t("inbox.dismiss")),
          // Without a suggestion there is nothing to take over: the device is added by hand.
          h("button", { type: "button", class: s ? "adopt" : "secondary add-by-hand", onclick: () => {
            location.hash = s ? `#/settings/devices/new?adopt=${encodeURIComponent(d.key)}` : "#/settings/devices/new";
          } }, t(s ? "inbox.adopt" : "inbox.by_hand"))]));
}

async function inboxPage(ctx) {
  const page = h("div", { class: "stack inbox" });
  const draw = async () => {
    let found;
    try {
      found = await get("/api/v1/admin/discovered");
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) {
        page.replaceChildren(h("p", { class: "muted card" }, t("inbox.unavailable")));
        return;
      }
      throw err;
    }
    const fresh = found.filter((d) => d.state !== "dismissed");
    const dismissed = found.filter((d) => d.state === "dismissed");
    refill(page,
      fresh.length ? fresh.map((d) => entry(ctx, d, draw)) : h("p", { class: "muted card" }, t("inbox.none")),
      dismissed.length ? h("details", { class: "card" }, h("summary", {}, t("inbox.dismissed")),
        h("div", { class: "stack" }, dismissed.map((d) => entry(ctx, d, draw)))) : null);
  };
  await draw();
  return page;
}

export default { render: inboxPage };
