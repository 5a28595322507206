// 账号: the accounts that log in to the dashboard. An admin adds one (a display name in any
// script, a role, a first password), changes its name or role, sets a new password, and
// disables or enables it. The gateway's refusals are English sentences: each one the admin
// can meet is checked here first and said in the page's language, under the field it is about.
// The district's page (/district#accounts) shows it as it is: the same routes, answered there
// by the district's store, list and change the district's accounts.

import { HttpError, get, send } from "../../api.js";
import { addLabels, t } from "../../i18n.js";
import { dialog, failure, h, refill } from "../../ui.js";

addLabels({
  "zh-CN": {
    "users.title": "账号", "users.add": "添加账号", "users.login": "用户名", "users.login_hint": "登录时输入：小写字母、数字和 . _ @ -，以字母或数字开头，保存后不能改",
    "users.display": "显示名", "users.display_hint": "大家看到的名字，可用中文，如：李主任", "users.role": "权限",
    "users.password": "密码", "users.password_hint": "至少 {n} 个字符", "users.new_password": "新密码",
    "role.admin": "管理员（可改设置）", "role.staff": "工作人员（可处理告警、工单、签字）", "role.viewer": "只能查看",
    "users.save": "保存", "users.reset": "重设密码", "users.disable": "停用", "users.enable": "启用",
    "users.disabled": "已停用", "users.saved": "已保存", "users.created": "已添加账号：{name}",
    "users.password_set": "已为 {name} 设置新密码，请当面告诉本人", "users.reset_title": "为 {name} 重设密码",
    "users.bad_login": "用户名只能用小写字母、数字和 . _ @ -，并以字母或数字开头",
    "users.short_password": "密码至少要 {n} 个字符", "users.long_name": "显示名最多 {n} 个字",
    "users.taken": "这个用户名已经有人用了，请换一个", "users.last_admin": "这是最后一个管理员账号，不能停用或降低权限",
    "users.none": "还没有账号",
  },
  en: {
    "users.title": "Accounts", "users.add": "Add an account", "users.login": "User name", "users.login_hint": "typed to log in: lower-case letters, digits and . _ @ -, starting with a letter or digit; fixed once saved",
    "users.display": "Display name", "users.display_hint": "the name people see, in any script: 李主任", "users.role": "May",
    "users.password": "Password", "users.password_hint": "at least {n} characters", "users.new_password": "New password",
    "role.admin": "Administrator (may change the settings)", "role.staff": "Staff (alerts, work orders, signing)", "role.viewer": "Look only",
    "users.save": "Save", "users.reset": "Set a new password", "users.disable": "Disable", "users.enable": "Enable",
    "users.disabled": "Disabled", "users.saved": "Saved", "users.created": "Account added: {name}",
    "users.password_set": "New password set for {name}: tell them in person", "users.reset_title": "New password for {name}",
    "users.bad_login": "A user name has lower-case letters, digits and . _ @ - only, and starts with a letter or digit",
    "users.short_password": "A password needs at least {n} characters", "users.long_name": "A display name has at most {n} characters",
    "users.taken": "That user name is taken: choose another", "users.last_admin": "This is the last administrator: it cannot be disabled or lowered",
    "users.none": "No accounts yet",
  },
});

const ROLES = ["admin", "staff", "viewer"];
const MIN_PASSWORD = 10;
const MAX_NAME = 50;
const LOGIN = /^[a-z0-9][a-z0-9._@-]{0,63}$/;

/** Why the form's values would be refused, in the page's language, and the field it is about:
 * { field, text }; null if they will not be. */
function refusal({ name, display_name: display, password }) {
  if (name !== undefined && !LOGIN.test(name)) return { field: "name", text: t("users.bad_login") };
  if (display !== undefined && [...display].length > MAX_NAME) {
    return { field: "display_name", text: t("users.long_name", { n: MAX_NAME }) };
  }
  if (password !== undefined && password.length < MIN_PASSWORD) {
    return { field: "password", text: t("users.short_password", { n: MIN_PASSWORD }) };
  }
  return null;
}

/** The gateway's refusal of `body` as `refusal` gives it: a login taken (adding), the last
 * administrator (lowering its role; disabling it is said by the buttons), or why it failed. */
function answer(err, creating, body) {
  if (err instanceof HttpError && err.status === 409) {
    return creating ? { field: "name", text: t("users.taken") } : { field: body.role ? "role" : null, text: t("users.last_admin") };
  }
  return { field: null, text: failure(err) };
}

/** Shows `problem` (or nothing, when null) in the form's one alert line: under the field it
 * names, else above the form's buttons. */
function say(form, line, problem) {
  line.textContent = problem?.text ?? "";
  const label = problem?.field ? form.elements.namedItem(problem.field)?.closest("label") : null;
  if (label) label.append(line);
  else form.querySelector(":scope > .actions").before(line);
}

function roleSelect(value) {
  return h("select", { name: "role", required: true }, ROLES.map((r) => h("option", { value: r, selected: r === value }, t(`role.${r}`))));
}

function passwordInput(name = "password") {
  return h("input", { name, type: "password", autocomplete: "new-password", minlength: MIN_PASSWORD, required: true });
}

function alertLine() {
  return h("small", { class: "field-error error-text", role: "alert" });
}

function addForm(rerender) {
  const line = alertLine();
  const form = h("form", { class: "form user-add", novalidate: true }, h("div", { class: "fields" },
    h("label", { class: "field" }, t("users.display"), h("input", { name: "display_name", maxlength: MAX_NAME, placeholder: t("users.display_hint") })),
    h("label", { class: "field" }, t("users.login"), h("input", { name: "name", autocomplete: "off", autocapitalize: "none", spellcheck: "false", required: true }),
      h("small", { class: "muted" }, t("users.login_hint"))),
    h("label", { class: "field" }, t("users.role"), roleSelect("staff")),
    h("label", { class: "field" }, t("users.password"), passwordInput(), h("small", { class: "muted" }, t("users.password_hint", { n: MIN_PASSWORD })))),
    line, h("div", { class: "actions" }, h("button", { type: "submit" }, t("users.add"))));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { name: form.name.value.trim(), display_name: form.display_name.value.trim(), role: form.role.value, password: form.password.value };
    say(form, line, refusal(body));
    if (line.textContent) return;
    try {
      const user = await send("POST", "/api/v1/users", body);
      rerender(t("users.created", { name: user.display_name }));
    } catch (err) {
      say(form, line, answer(err, true, body));
    }
  });
  return form;
}

function resetDialog(user, done) {
  dialog((close) => {
    const line = alertLine();
    const form = h("form", { class: "form", novalidate: true }, h("h2", {}, t("users.reset_title", { name: user.display_name })),
      h("label", {}, t("users.new_password"), passwordInput(), h("small", { class: "muted" }, t("users.password_hint", { n: MIN_PASSWORD }))),
      line, h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: close }, t("common.cancel")),
        h("button", { type: "submit" }, t("users.reset"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { password: form.password.value };
      say(form, line, refusal(body));
      if (line.textContent) return;
      try {
        await send("PATCH", `/api/v1/users/${encodeURIComponent(user.name)}`, body);
        close();
        done(t("users.password_set", { name: user.display_name }));
      } catch (err) {
        say(form, line, answer(err, false, body));
      }
    });
    return form;
  });
}

function userRow(user, rerender) {
  const line = alertLine();
  const patch = async (body) => {
    say(form, line, refusal(body));
    if (line.textContent) return;
    try {
      await send("PATCH", `/api/v1/users/${encodeURIComponent(user.name)}`, body);
      rerender(t("users.saved"));
    } catch (err) {
      say(form, line, answer(err, false, body));
    }
  };
  // The login and the display name are in fields: a login is typed, not read as a sentence.
  const form = h("form", { class: `form user ${user.disabled ? "disabled" : ""}`, dataset: { user: user.name }, novalidate: true },
    h("div", { class: "fields" },
      h("label", { class: "field" }, t("users.display"), h("input", { name: "display_name", value: user.display_name, maxlength: MAX_NAME })),
      h("label", { class: "field" }, t("users.login"), h("input", { name: "name", value: user.name, readonly: true })),
      h("label", { class: "field" }, t("users.role"), roleSelect(user.role))),
    user.disabled ? h("p", {}, h("span", { class: "chip bad" }, t("users.disabled"))) : null,
    line,
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary toggle", onclick: () => patch({ disabled: !user.disabled }) },
        t(user.disabled ? "users.enable" : "users.disable")),
      h("button", { type: "button", class: "secondary reset", onclick: () => resetDialog(user, rerender) }, t("users.reset")),
      h("button", { type: "submit" }, t("users.save"))));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    patch({ display_name: form.display_name.value.trim(), role: form.role.value });
  });
  return form;
}

async function usersPage() {
  const page = h("div", { class: "stack users" });
  const draw = async (message = "") => {
    const users = await get("/api/v1/users");
    refill(page,
      message ? h("p", { class: "banner notice ok", role: "status" }, message) : null,
      h("section", { class: "card" }, h("h2", {}, t("users.add")), addForm(draw)),
      h("section", { class: "card" }, h("h2", {}, t("users.title")),
        users.length ? h("div", { class: "stack" }, users.map((u) => userRow(u, draw))) : h("p", { class: "muted" }, t("users.none"))));
  };
  await draw();
  return page;
}

// Accounts are not part of the site file: they are edited even where the settings are read-only.
export default { render: usersPage };
