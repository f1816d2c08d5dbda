// The scenario editor of /bench: a list of steps (action + its fields), reorderable, with the
// server's validation messages shown on the step they concern, and a JSON view for pasting.
import { el } from "./api.js";

/** Fields each action takes: [name, label, kind, placeholder]. */
const FIELDS = {
  goto: [["url", "URL", "text", "(the target URL) or /path"]],
  click: [["selector", "selector", "text", "#buy, text=Sign in"]],
  type: [["selector", "selector", "text", "#search"], ["text", "text", "text", "hello"]],
  scroll: [["by", "pixels", "number", "600"], ["to", "or to", "select:—,top,bottom", ""]],
  wait: [["ms", "ms", "number", "1000"], ["selector", "or until visible", "text", ".loaded"]],
  screenshot: [["name", "name", "text", "checkout"]],
  hover: [["selector", "selector", "text", "nav .menu"]],
  press: [["key", "key", "text", "Enter"], ["selector", "in", "text", "(focused element)"]],
};
const ACTIONS = Object.keys(FIELDS);

export const DEFAULT_STEPS = [
  { action: "goto" },
  { action: "scroll", by: 600 },
  { action: "wait", ms: 1000 },
];

/** A step with empty fields dropped and numbers as numbers. */
function clean(step) {
  const out = { action: step.action };
  for (const [name, , kind] of FIELDS[step.action] ?? []) {
    const v = step[name];
    if (v === undefined || v === null || v === "" || v === "—") continue;
    out[name] = kind === "number" && v !== "" && !Number.isNaN(Number(v)) ? Number(v) : v;
  }
  return out;
}

export function createScenarioEditor(root, { onChange = () => {} } = {}) {
  let steps = structuredClone(DEFAULT_STEPS);
  let jsonMode = false;
  const list = el("ol", { class: "steps", id: "scenario-steps" });
  const json = el("textarea", {
    id: "scenario-json",
    class: "mono hidden",
    rows: "8",
    spellcheck: "false",
  });
  const jsonError = el("div", { class: "field-error", id: "scenario-json-error" });
  const toggle = el(
    "button",
    { type: "button", class: "secondary", id: "scenario-toggle" },
    "JSON",
  );
  const add = el(
    "button",
    { type: "button", class: "secondary", id: "scenario-add" },
    "+ Add step",
  );

  const changed = () => onChange(value());

  const fieldInput = (step, [name, label, kind, placeholder]) => {
    let input;
    if (kind.startsWith("select:")) {
      input = el(
        "select",
        { name: `step-${name}` },
        kind.slice(7).split(",").map((o) => el("option", { selected: step[name] === o }, o)),
      );
    } else {
      input = el("input", {
        name: `step-${name}`,
        type: kind === "number" ? "number" : "text",
        placeholder,
        value: step[name] ?? "",
        size: kind === "number" ? "7" : "22",
      });
    }
    input.addEventListener("input", () => {
      step[name] = input.value;
      changed();
    });
    return el("label", { class: "compact" }, label, input);
  };

  const render = () => {
    list.replaceChildren(...steps.map((step, i) => {
      const action = el(
        "select",
        { name: "step-action", "aria-label": `step ${i + 1} action` },
        ACTIONS.map((a) => el("option", { selected: a === step.action }, a)),
      );
      action.addEventListener("change", () => {
        steps[i] = { action: action.value };
        render();
        changed();
      });
      const move = (d) => () => {
        const j = i + d;
        if (j < 0 || j >= steps.length) return;
        [steps[i], steps[j]] = [steps[j], steps[i]];
        render();
        changed();
      };
      return el(
        "li",
        { class: "step", dataset: { index: String(i) } },
        el(
          "div",
          { class: "row" },
          action,
          ...(FIELDS[step.action] ?? []).map((f) => fieldInput(step, f)),
          el("button", { type: "button", class: "secondary", title: "up", onclick: move(-1) }, "↑"),
          el(
            "button",
            { type: "button", class: "secondary", title: "down", onclick: move(1) },
            "↓",
          ),
          el("button", {
            type: "button",
            class: "secondary",
            title: "remove",
            onclick: () => {
              steps.splice(i, 1);
              render();
              changed();
            },
          }, "×"),
        ),
        el("div", { class: "field-error step-error" }),
      );
    }));
  };

  add.addEventListener("click", () => {
    steps.push({ action: "wait", ms: 1000 });
    render();
    changed();
  });
  toggle.addEventListener("click", () => {
    jsonMode = !jsonMode;
    if (jsonMode) json.value = JSON.stringify(value(), null, 2);
    else render();
    json.classList.toggle("hidden", !jsonMode);
    list.classList.toggle("hidden", jsonMode);
    add.classList.toggle("hidden", jsonMode);
    toggle.textContent = jsonMode ? "Steps" : "JSON";
  });
  json.addEventListener("input", () => {
    try {
      const parsed = JSON.parse(json.value);
      if (!Array.isArray(parsed)) throw new Error("not a list");
      steps = parsed.map((s) => ({ ...s }));
      jsonError.textContent = "";
      changed();
    } catch (e) {
      jsonError.textContent = `scenario: not a JSON list of steps (${e.message})`;
    }
  });

  root.replaceChildren(list, json, jsonError, el("div", { class: "row" }, add, toggle));
  render();

  /** The steps as the API takes them. */
  function value() {
    return jsonMode && jsonError.textContent ? steps : steps.map(clean);
  }

  return {
    value,
    /**
     * Shows the problems that concern steps (field `params.scenario.N...`) on their step and
     * returns the others.
     */
    showProblems(problems) {
      for (const e of list.querySelectorAll(".step-error")) e.textContent = "";
      for (const li of list.querySelectorAll(".step")) li.classList.remove("invalid");
      const rest = [];
      for (const p of problems) {
        const m = /^params\.scenario\.(\d+)(?:\.(\w+))?$/.exec(p.field);
        const li = m && list.querySelector(`.step[data-index="${m[1]}"]`);
        if (li && !jsonMode) {
          li.classList.add("invalid");
          li.querySelector(".step-error").textContent = `${m[2] ?? "step"}: ${p.message}`;
        } else rest.push(p);
      }
      return rest;
    },
  };
}
