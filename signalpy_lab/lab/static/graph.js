// signalpy_lab GraphWidget view: the laid-out SVG, restyled in place.
//
// `svg` changes only when the graph's structure changes (a new layout); `classes`, `details`
// and `highlight` change every epoch and are applied to the existing SVG by node id, so a
// status change never re-lays out or re-parses anything.

const LEGEND = [
  ["set", "signal", "written"],
  ["recomputed", "computed", "recomputed, new value"],
  ["unchanged", "computed", "recomputed, equal value"],
  ["stale", "computed", "stale, not re-run yet"],
  ["verified", "computed", "checked, not re-run"],
  ["added", "computed", "new, not run yet"],
  ["removed", "computed", "removed"],
  ["untouched", "computed", "untouched"],
];

// Graphviz gives its SVG a fixed size in pt; at that size a graph wider than the output (a
// chain laid out left to right) runs past the output's edge. The view has a zoom level,
// applied as the SVG's width (its viewBox scales the drawing), inside a canvas that scrolls
// both ways, so every node is always on screen or reachable:
//
// * a new layout opens "fitted": the whole graph in the canvas (long chains are laid out top
//   to bottom by the Python side, so that stays readable); "fit" does the same again;
// * the toolbar zooms out / in, "fit" shows the whole graph in the canvas (any scale), and
//   "1:1" is the natural size; Ctrl/⌘ + wheel zooms at the pointer; dragging the background
//   pans (plain wheel and trackpad scroll as usual).
//
// Hooks for a browser test: the canvas is .signalpy-canvas with data-zoom (the scale) and
// data-fitted; buttons are .signalpy-zoom-out, -in, -fit and -reset; node groups keep
// Graphviz's id (n<uid>, also in data-id) and get data-node (the node's label, e.g.
// tenant-db-globex.db_url; a summary's id) and data-status (set, recomputed, unchanged,
// stale, verified, untouched; "summary" for a summary node) for the epoch shown.
// The epoch timeline is .signalpy-epochs: one button.signalpy-epoch[data-epoch="N"] per kept
// epoch, with data-cell (the prompt number, for a cell's epoch), two lines (.head: "In [9]" or
// "epoch N"; .text: the command that made the change, wrapped) and the full title and its
// counts on hover; .selected and aria-pressed="true" on the one shown; and
// button.signalpy-epoch-live (selected while following the newest epoch). The tenant filter
// is input.signalpy-tenant-filter (its suggestions: the tenants, in natural order).
const MIN_SCALE = 0.75;
const ZOOM_MIN = 0.1;
const ZOOM_MAX = 4;
const ZOOM_STEP = 1.25;

function naturalSize(svg) {
  const box = svg.viewBox && svg.viewBox.baseVal;
  if (box && box.width > 0) return { width: box.width * (4 / 3), height: box.height * (4 / 3) };
  const width = svg.width && svg.width.baseVal ? svg.width.baseVal.value : 0; // in px
  const height = svg.height && svg.height.baseVal ? svg.height.baseVal.value : 0;
  return { width, height };
}

function toolbar(zoom) {
  const bar = document.createElement("div");
  bar.className = "signalpy-zoom";
  const buttons = [
    ["signalpy-zoom-out", "−", "zoom out", () => zoom.by(1 / ZOOM_STEP)],
    ["signalpy-zoom-in", "+", "zoom in", () => zoom.by(ZOOM_STEP)],
    ["signalpy-zoom-fit", "fit", "show the whole graph", () => zoom.fit(true)],
    ["signalpy-zoom-reset", "1:1", "natural size", () => zoom.set(1)],
  ];
  for (const [cls, text, title, action] of buttons) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = cls;
    button.textContent = text;
    button.title = title;
    button.addEventListener("click", action);
    bar.appendChild(button);
  }
  const level = document.createElement("span");
  level.className = "signalpy-zoom-level";
  bar.appendChild(level);
  return { bar, level };
}

function zoomable(canvas) {
  let svg = null;
  let natural = { width: 0, height: 0 };
  let scale = 1;
  let onChange = () => {};

  function apply(next, anchor) {
    if (!svg || natural.width <= 0) return;
    const old = scale;
    scale = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, next));
    svg.style.maxWidth = "none";
    svg.style.minWidth = "0";
    svg.style.width = `${Math.round(natural.width * scale)}px`;
    svg.style.height = `${Math.round(natural.height * scale)}px`;
    if (anchor) {
      // keep the point under the pointer where it was
      const ratio = scale / old;
      canvas.scrollLeft = (canvas.scrollLeft + anchor.x) * ratio - anchor.x;
      canvas.scrollTop = (canvas.scrollTop + anchor.y) * ratio - anchor.y;
    }
    canvas.dataset.zoom = scale.toFixed(3);
    onChange(scale);
  }

  const zoom = {
    attach(element) {
      svg = element;
      natural = naturalSize(svg);
      canvas.dataset.fitted = "true";
      zoom.fit(true);
    },
    set(next) { canvas.dataset.fitted = "false"; apply(next); },
    by(factor, anchor) { canvas.dataset.fitted = "false"; apply(scale * factor, anchor); },
    fit(whole) {
      const width = canvas.clientWidth || natural.width;
      const maxHeight = parseFloat(getComputedStyle(canvas).maxHeight) || Infinity;
      let next = Math.min(1, width / natural.width);
      if (whole) next = Math.min(next, maxHeight / natural.height);
      else next = Math.max(next, Math.min(1, MIN_SCALE));
      canvas.dataset.fitted = "true";
      apply(next);
    },
    onChange(callback) { onChange = callback; },
  };

  canvas.addEventListener("wheel", (event) => {
    if (!(event.ctrlKey || event.metaKey) || !svg) return; // plain wheel scrolls
    event.preventDefault();
    const rect = canvas.getBoundingClientRect();
    const anchor = { x: event.clientX - rect.left, y: event.clientY - rect.top };
    zoom.by(event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, anchor);
  }, { passive: false });

  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.target.closest("g.node")) return;
    drag = { x: event.clientX, y: event.clientY, left: canvas.scrollLeft, top: canvas.scrollTop };
    canvas.classList.add("panning");
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    canvas.scrollLeft = drag.left - (event.clientX - drag.x);
    canvas.scrollTop = drag.top - (event.clientY - drag.y);
  });
  const stop = () => { drag = null; canvas.classList.remove("panning"); };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
  return zoom;
}

function legend() {
  const box = document.createElement("div");
  box.className = "signalpy-legend";
  for (const [status, kind, text] of LEGEND) {
    const item = document.createElement("span");
    item.className = "signalpy-legend-item";
    const shape = kind === "signal"
      ? '<polygon points="2,2 26,2 26,14 2,14"/>'
      : '<ellipse cx="14" cy="8" rx="12" ry="6"/>';
    item.innerHTML =
      `<svg class="signalpy-graph" viewBox="0 0 28 16"><g class="node ${kind} ${status}">` +
      `${shape}</g></svg><span>${text}</span>`;
    box.appendChild(item);
  }
  return box;
}

function timeline(model) {
  const strip = document.createElement("div");
  strip.className = "signalpy-epochs";
  function draw() {
    const shown = model.get("epoch");
    strip.replaceChildren();
    const live = document.createElement("button");
    live.type = "button";
    live.className = "signalpy-epoch-live" + (shown === null ? " selected" : "");
    live.textContent = "live";
    live.title = "follow the newest epoch";
    live.setAttribute("aria-pressed", String(shown === null));
    live.addEventListener("click", () => { model.set("epoch", null); model.save_changes(); });
    for (const step of model.get("epochs") || []) {
      const button = document.createElement("button");
      button.type = "button";
      const selected = shown === step.number || (shown === null && step.live);
      button.className = "signalpy-epoch" + (selected ? " selected" : "")
        + (step.live ? " current" : "");
      button.dataset.epoch = String(step.number);
      if (step.cell !== null && step.cell !== undefined) button.dataset.cell = String(step.cell);
      const head = document.createElement("span");
      head.className = "head";
      head.textContent = step.head || `epoch ${step.number}`;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = step.text || "";
      button.append(head, text);
      button.title = step.hover || `${step.title}\n${step.summary}`;
      button.setAttribute("aria-pressed", String(shown === step.number));
      button.addEventListener("click", () => {
        model.set("epoch", step.live ? null : step.number);
        model.save_changes();
      });
      strip.appendChild(button);
    }
    strip.appendChild(live);
    const chosen = strip.querySelector(".signalpy-epoch.selected");
    if (chosen && chosen.scrollIntoView) chosen.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
  draw();
  return { strip, draw };
}

function tenantFilter(model) {
  const box = document.createElement("span");
  box.className = "signalpy-tenant-box";
  const input = document.createElement("input");
  input.type = "search";
  input.className = "signalpy-tenant-filter";
  input.placeholder = "tenant…";
  input.title = "show one tenant's nodes (and what they read); empty for all";
  const list = document.createElement("datalist");
  list.id = `signalpy-tenants-${Math.random().toString(36).slice(2)}`;
  input.setAttribute("list", list.id);
  function draw() {
    if (document.activeElement !== input) input.value = model.get("tenant_filter") || "";
    list.replaceChildren(...(model.get("tenants") || []).map((t) => {
      const option = document.createElement("option");
      option.value = t;
      return option;
    }));
  }
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { model.set("tenant_filter", input.value); model.save_changes(); },
      250);
  });
  box.append(input, list);
  draw();
  return { box, draw };
}

function render({ model, el }) {
  el.classList.add("signalpy-lab", "signalpy-graph-widget");
  const caption = document.createElement("div");
  caption.className = "signalpy-caption";
  const canvas = document.createElement("div");
  canvas.className = "signalpy-canvas";
  const zoom = zoomable(canvas);
  const tools = toolbar(zoom);
  zoom.onChange((scale) => { tools.level.textContent = `${Math.round(scale * 100)}%`; });
  const header = document.createElement("div");
  header.className = "signalpy-graph-header";
  const filter = tenantFilter(model);
  header.append(legend(), filter.box, tools.bar);
  const steps = timeline(model);
  el.append(caption, steps.strip, header, canvas);

  let index = new Map(); // node id -> <g> of the current SVG

  function applyClasses() {
    const classes = model.get("classes") || {};
    const marked = new Set(model.get("highlight") || []);
    for (const [id, cls] of Object.entries(classes)) {
      const g = index.get(id);
      if (!g) continue;
      g.setAttribute("class", `node ${cls}${marked.has(id) ? " highlight" : ""}`);
      const words = cls.split(" ");
      g.dataset.status = words[0] === "summary" ? "summary" : (words[1] || "untouched");
    }
  }

  function applyDetails() {
    const details = model.get("details") || {};
    for (const [id, text] of Object.entries(details)) {
      const g = index.get(id);
      const line = g && g.querySelectorAll("text")[1];
      if (line && line.textContent !== text) line.textContent = text;
    }
  }

  function drawSvg() {
    canvas.innerHTML = model.get("svg") || '<div class="signalpy-empty">no nodes</div>';
    const svg = canvas.querySelector("svg");
    if (svg) {
      svg.removeAttribute("style"); // the static max-width rule; the zoom sizes it here
      // the canvas may not be laid out yet (a widget rendered into a hidden tab)
      requestAnimationFrame(() => zoom.attach(svg));
    }
    index = new Map();
    const labels = model.get("labels") || {};
    for (const g of canvas.querySelectorAll("g.node")) {
      g.dataset.id = g.id;
      g.dataset.node = labels[g.id] || g.id;
      index.set(g.id, g);
    }
    applyClasses();
    applyDetails();
  }

  function drawCaption() {
    caption.textContent = model.get("caption") || "";
  }

  drawCaption();
  drawSvg();
  model.on("change:svg", drawSvg);
  model.on("change:classes", applyClasses);
  model.on("change:highlight", applyClasses);
  model.on("change:details", applyDetails);
  model.on("change:caption", drawCaption);
  model.on("change:epochs", steps.draw);
  model.on("change:epoch", steps.draw);
  model.on("change:tenants", filter.draw);
  model.on("change:tenant_filter", filter.draw);
  return () => {
    model.off("change:tenants", filter.draw);
    model.off("change:tenant_filter", filter.draw);
    model.off("change:epochs", steps.draw);
    model.off("change:epoch", steps.draw);
    model.off("change:svg", drawSvg);
    model.off("change:classes", applyClasses);
    model.off("change:highlight", applyClasses);
    model.off("change:details", applyDetails);
    model.off("change:caption", drawCaption);
  };
}

export default { render };
