// 设置: the school's set-up for its head of logistics (an admin), without YAML: one page per
// part of the site file (views/settings/*.js), each saved with the configuration's version.
// Anyone else reaching it is told it needs an admin; a site managed from its file shows
// everything and changes nothing.

import { HttpError, get, login, session } from "../api.js";
import { addLabels, pick, t, when } from "../i18n.js";
import { h, showLogin } from "../ui.js";
import calendar from "./settings/calendar.js";
import devices from "./settings/devices.js";
import duty from "./settings/duty.js";
import file from "./settings/file.js";
import { said, takeNotice } from "./settings/form.js";
import hours from "./settings/hours.js";
import inbox from "./settings/inbox.js";
import notifications from "./settings/notifications.js";
import school from "./settings/school.js";
import tariffs from "./settings/tariffs.js";
import users from "./settings/users.js";

addLabels({
  "zh-CN": {
    "nav.settings": "设置",
    "settings.school": "学校与楼宇", "settings.devices": "设备", "settings.hours": "开放时间", "settings.calendar": "校历",
    "settings.duty": "值班", "settings.users": "账号", "settings.notifications": "通知", "settings.tariffs": "电价与目标",
    "settings.inbox": "新设备", "settings.file": "配置文件",
    "settings.admin_only": "需要管理员权限", "settings.admin_only_hint": "设置只能由管理员（如后勤主任）修改，请用管理员账号登录。",
    "settings.log_in": "用管理员账号登录",
    "settings.read_only": "本校的设置由配置文件 {file} 管理，这里只能查看。要修改，请改配置文件后重启网关。",
    "settings.read_only_nofile": "本校的设置由配置文件管理，这里只能查看。",
    "settings.changed": "上次修改：{t}，{who}", "settings.changed_file": "上次修改：{t}，来自配置文件",
    "settings.pages": "设置的各部分",
    "settings.file_pending": "配置文件在这里改过设置之后又被修改，没有自动采用，以免覆盖这里的修改。要看它有哪些不同，请到",
  },
  en: {
    "nav.settings": "Settings",
    "settings.school": "School and buildings", "settings.devices": "Devices", "settings.hours": "Opening hours",
    "settings.calendar": "Calendar", "settings.duty": "Duty roster", "settings.users": "Accounts",
    "settings.notifications": "Notifications", "settings.tariffs": "Tariffs and targets", "settings.inbox": "New devices",
    "settings.file": "Site file",
    "settings.admin_only": "Needs an administrator", "settings.admin_only_hint": "Only an administrator (the head of logistics, say) may change the settings: log in with an administrator's account.",
    "settings.log_in": "Log in as an administrator",
    "settings.read_only": "This school's settings are managed in the site file {file}: they can be looked at here, not changed. To change them, edit the file and restart the gateway.",
    "settings.read_only_nofile": "This school's settings are managed in the site file: they can be looked at here, not changed.",
    "settings.changed": "Last changed {t} by {who}", "settings.changed_file": "Last changed {t}, from the site file",
    "settings.pages": "Parts of the settings",
    "settings.file_pending": "The site file was edited after the settings were changed here, and was not taken so that those changes stay. To see how it differs, go to",
  },
});

const PAGES = { school, devices, hours, calendar, duty, users, notifications, tariffs, inbox, file };

function refusal(ctx) {
  return h("section", { class: "card settings-refused", role: "alert" },
    h("h2", {}, t("settings.admin_only")), h("p", { class: "muted" }, t("settings.admin_only_hint")),
    h("button", { type: "button", onclick: () => showLogin("", async (u, p) => {
      await login(u, p);
      document.dispatchEvent(new Event("session"));
    }, () => {}, ctx.rerender) }, t("settings.log_in")));
}

function tabs(current) {
  return h("nav", { class: "settings-tabs", "aria-label": t("settings.pages") }, Object.keys(PAGES).map((name) => h("a", {
    href: `#/settings/${name}`, class: name === current ? "active" : "", "aria-current": name === current ? "page" : null,
  }, t(`settings.${name}`))));
}

function banner(config) {
  if (config.read_only) {
    return h("p", { class: "banner read-only", role: "note" },
      config.file ? t("settings.read_only", { file: config.file }) : t("settings.read_only_nofile"));
  }
  return config.file_pending ? h("p", { class: "banner file-pending", role: "note" }, t("settings.file_pending"),
    " ", h("a", { href: "#/settings/file" }, t("settings.file"))) : null;
}

function changed(config) {
  if (!config.changed_at) return null;
  const at = when(config.changed_at);
  return h("p", { class: "muted small" }, config.changed_by
    ? t("settings.changed", { t: at, who: pick(config.changed_by, "name") }) : t("settings.changed_file", { t: at }));
}

function noticeLine() {
  const n = takeNotice();
  if (!n) return null;
  return h("div", { class: `banner notice ${n.tone}`, role: "status" }, h("p", {}, n.text),
    n.changes.length ? h("ul", { class: "changes" }, n.changes.map((c) => h("li", {}, said(c)))) : null);
}

async function settingsView(ctx) {
  if (session()?.role !== "admin") return refusal(ctx);
  let config;
  try {
    config = await get("/api/v1/admin/config");
  } catch (err) {
    if (err instanceof HttpError && (err.status === 401 || err.status === 403)) return refusal(ctx);
    throw err;
  }
  const [name, ...rest] = ctx.arg.split("/");
  const page = PAGES[name] ? name : "school";
  const sub = { ...ctx, config, site: config.site, catalog: config.catalog, readOnly: config.read_only, rest: rest.join("/") };
  return h("div", { class: `settings ${config.read_only ? "read-only" : ""}`, dataset: { page, version: config.version } },
    tabs(page), banner(config), noticeLine(), await PAGES[page].render(sub), changed(config));
}

export default { render: settingsView, live: [], keepsInput: true };
