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
  ["verified", "computed", "verified, not re-run"],
  ["untouched", "computed", "untouched"],
];

// Graphviz gives its SVG a fixed size in pt; at that size a graph wider than the output (a
// chain laid out left to right) shows only its first nodes until you scroll. Shrink it to the
// output's width (CSS max-width), but never below MIN_SCALE of its natural size, where its
// 10pt labels stop being readable; past that the canvas scrolls.
const MIN_SCALE = 0.75;

function fit(svg) {
  const width = svg.width && svg.width.baseVal ? svg.width.baseVal.value : 0; // in px
  if (width > 0) svg.style.minWidth = `${Math.round(width * MIN_SCALE)}px`;
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

function render({ model, el }) {
  el.classList.add("signalpy-lab", "signalpy-graph-widget");
  const caption = document.createElement("div");
  caption.className = "signalpy-caption";
  const canvas = document.createElement("div");
  canvas.className = "signalpy-canvas";
  el.append(caption, legend(), canvas);

  let index = new Map(); // node id -> <g> of the current SVG

  function applyClasses() {
    const classes = model.get("classes") || {};
    const marked = new Set(model.get("highlight") || []);
    for (const [id, cls] of Object.entries(classes)) {
      const g = index.get(id);
      if (g) g.setAttribute("class", `node ${cls}${marked.has(id) ? " highlight" : ""}`);
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
    if (svg) fit(svg);
    index = new Map();
    for (const g of canvas.querySelectorAll("g.node")) index.set(g.id, g);
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
  return () => {
    model.off("change:svg", drawSvg);
    model.off("change:classes", applyClasses);
    model.off("change:highlight", applyClasses);
    model.off("change:details", applyDetails);
    model.off("change:caption", drawCaption);
  };
}

export default { render };
