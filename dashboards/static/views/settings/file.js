// 配置文件: the site file as the settings are now (a download), and a site file read in: first
// a preview of what it would change (or what is wrong in it, by line), then 应用.

import { download, send } from "../../api.js";
import { addLabels, num, t } from "../../i18n.js";
import { failure, h, refill, saveFile } from "../../ui.js";
import { outcome, said, submit } from "./form.js";

addLabels({
  "zh-CN": {
    "file.export": "导出配置文件", "file.export_hint": "当前的全部设置，可留作备份，或用来配置另一所学校。",
    "file.download": "下载", "file.saved": "已下载：{f}",
    "file.import": "导入配置文件", "file.import_hint": "先预览会改动什么，确认后再应用。",
    "file.choose": "选择文件", "file.text": "或把内容粘贴在这里", "file.preview": "预览改动", "file.apply": "应用",
    "file.changes": "将会改动：", "file.no_changes": "与当前设置相同，没有改动。", "file.problems": "文件里有 {n} 处问题，改正后才能导入：",
    "file.line": "第 {n} 行：", "file.empty": "请先选择文件或粘贴内容",
  },
  en: {
    "file.export": "Export the site file", "file.export_hint": "All the settings as they are now: a backup, or a start for another school.",
    "file.download": "Download", "file.saved": "Downloaded: {f}",
    "file.import": "Import a site file", "file.import_hint": "See what it would change first, then apply it.",
    "file.choose": "Choose a file", "file.text": "or paste it here", "file.preview": "Preview the changes", "file.apply": "Apply",
    "file.changes": "It would change:", "file.no_changes": "Same as the settings now: nothing would change.",
    "file.problems": "{n} problems in the file, to correct before it can be imported:",
    "file.line": "line {n}: ", "file.empty": "Choose a file or paste it first",
  },
});

function exportCard() {
  const note = h("p", { class: "small muted", role: "status" });
  return h("section", { class: "card export" }, h("h2", {}, t("file.export")), h("p", { class: "muted small" }, t("file.export_hint")),
    h("div", { class: "actions start" }, h("button", { type: "button", class: "download", onclick: async () => {
      try {
        const { blob, filename } = await download("/api/v1/admin/config/export", {}, "site.yaml");
        saveFile(blob, filename);
        note.className = "small muted";
        note.textContent = t("file.saved", { f: filename });
      } catch (err) {
        note.className = "small error-text";
        note.textContent = failure(err);
      }
    } }, t("file.download"))), note);
}

function problemLine(p) {
  return h("li", { class: "error-text" }, p.line ? t("file.line", { n: num(p.line, 0) }) : "", said(p));
}

function importCard(ctx) {
  const text = h("textarea", { name: "yaml", rows: 10, spellcheck: "false", class: "yaml" });
  const chooser = h("input", { type: "file", name: "file", accept: ".yaml,.yml,text/yaml" });
  chooser.addEventListener("change", async () => {
    if (chooser.files[0]) text.value = await chooser.files[0].text();
  });
  const preview = h("div", { class: "preview", role: "status" });
  const top = outcome();
  const apply = h("button", { type: "button", class: "apply", hidden: true }, t("file.apply"));
  const form = h("form", { class: "form import", novalidate: true },
    h("label", {}, t("file.choose"), chooser), h("label", {}, t("file.text"), text),
    h("div", { class: "actions start" }, h("button", { type: "submit", class: "secondary" }, t("file.preview")), apply),
    preview, top);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    apply.hidden = true;
    top.replaceChildren();
    if (!text.value.trim()) {
      preview.replaceChildren(h("p", { class: "error-text" }, t("file.empty")));
      return;
    }
    let out;
    try {
      out = await send("POST", "/api/v1/admin/config/import", { yaml: text.value, apply: false, version: ctx.config.version });
    } catch (err) {
      preview.replaceChildren(h("p", { class: "error-text", role: "alert" }, failure(err)));
      return;
    }
    const problems = out.problems ?? [];
    const changes = out.changes ?? [];
    refill(preview, problems.length
      ? [h("p", { class: "error-text" }, t("file.problems", { n: problems.length })), h("ul", { class: "problems" }, problems.map(problemLine))]
      : changes.length ? [h("p", {}, t("file.changes")), h("ul", { class: "changes" }, changes.map((c) => h("li", {}, said(c))))]
        : h("p", { class: "muted" }, t("file.no_changes")));
    apply.hidden = Boolean(problems.length) || !changes.length;
  });
  apply.addEventListener("click", () => submit(ctx, form, top,
    (version) => send("POST", "/api/v1/admin/config/import", { yaml: text.value, apply: true, version })));
  return h("section", { class: "card" }, h("h2", {}, t("file.import")), h("p", { class: "muted small" }, t("file.import_hint")), form);
}

export default {
  render: (ctx) => h("div", { class: "stack" }, exportCard(), ctx.readOnly ? null : importCard(ctx)),
};
