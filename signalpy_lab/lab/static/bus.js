// signalpy_lab BusTable view: one row per served handler and target; a click selects the
// tenant.
//
// Python (lab/bus_rows.py) sorts, filters and windows the rows; this module only renders
// `rows` and sends back what the user did: a header click sets `sort_by` / `descending`, the
// filter box sets `filter` (debounced), the checkbox sets `recent_first`. The table has a
// bounded height and scrolls in its own box (CSS), under a sticky header; `summary` says how
// many rows are hidden.
//
// Stable hooks for tests in a browser: every row is `tr.signalpy-bus-row` with data-key,
// data-target, data-instance, data-runnable and data-handler; sortable headers carry
// data-sort and `aria-sort`; the controls are .signalpy-bus-filter, .signalpy-bus-recent and
// .signalpy-bus-summary.

const COLUMNS = [
  // [row key, title, css class, sort column or null]
  ["target", "target", "", "target"],
  ["instance", "instance", "", "instance"],
  ["factory", "factory", "", "factory"],
  ["runnable", "runnable", "", "runnable"],
  ["arrow", "routes", "wrap", null],
  ["via", "via", "", "via"],
  ["state", "state", "", "state"],
  ["calls", "calls", "num", "calls"],
  ["errors", "errors", "num errors", "errors"],
  ["latency", "last latency", "num", "latency"],
  ["result", "last result", "wrap", null],
];
const DEBOUNCE_MS = 200;

function controls(model) {
  const box = document.createElement("div");
  box.className = "signalpy-bus-controls";
  const filter = document.createElement("input");
  filter.type = "search";
  filter.className = "signalpy-bus-filter";
  filter.placeholder = "filter: tenant, instance, runnable (tenant:t1 for exactly t1)";
  filter.value = model.get("filter") || "";
  const recentLabel = document.createElement("label");
  const recent = document.createElement("input");
  recent.type = "checkbox";
  recent.className = "signalpy-bus-recent";
  recent.checked = !!model.get("recent_first");
  recentLabel.append(recent, document.createTextNode(" most recently called first"));
  const summary = document.createElement("span");
  summary.className = "signalpy-bus-summary";
  box.append(filter, recentLabel, summary);

  let timer = null;
  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      model.set("filter", filter.value);
      model.save_changes();
    }, DEBOUNCE_MS);
  });
  recent.addEventListener("change", () => {
    model.set("recent_first", recent.checked);
    model.save_changes();
  });
  return { box, filter, recent, summary };
}

function render({ model, el }) {
  el.classList.add("signalpy-lab", "signalpy-bus");
  const ui = controls(model);
  const table = document.createElement("table");
  table.className = "signalpy-table";
  const head = document.createElement("thead");
  const headRow = document.createElement("tr");
  for (const [, title, cls, sort] of COLUMNS) {
    const th = document.createElement("th");
    th.className = cls;
    th.textContent = title;
    if (sort) {
      th.dataset.sort = sort;
      th.classList.add("sortable");
      th.title = `sort by ${title} (again: reverse)`;
      th.addEventListener("click", () => {
        const same = model.get("sort_by") === sort;
        model.set("sort_by", sort);
        model.set("descending", same ? !model.get("descending") : false);
        model.save_changes();
      });
    }
    headRow.appendChild(th);
  }
  head.appendChild(headRow);
  const body = document.createElement("tbody");
  table.append(head, body);
  const scroll = document.createElement("div");
  scroll.className = "signalpy-scroll signalpy-bus-scroll";
  scroll.appendChild(table);
  el.append(ui.box, scroll);

  function drawHead() {
    const sortBy = model.get("sort_by");
    const order = model.get("descending") ? "descending" : "ascending";
    for (const th of headRow.children) {
      const active = th.dataset.sort && th.dataset.sort === sortBy && !model.get("recent_first");
      th.classList.toggle("sorted", !!active);
      th.classList.toggle("desc", !!active && order === "descending");
      if (th.dataset.sort) th.setAttribute("aria-sort", active ? order : "none");
    }
  }

  function drawControls() {
    if (document.activeElement !== ui.filter) ui.filter.value = model.get("filter") || "";
    ui.recent.checked = !!model.get("recent_first");
    ui.summary.textContent = model.get("summary") || "";
  }

  function draw() {
    const rows = model.get("rows") || [];
    const selected = model.get("selected_target");
    body.replaceChildren();
    drawHead();
    drawControls();
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      const text = model.get("total") ? "no route matches the filter" : "no routes";
      tr.innerHTML = `<td class="signalpy-empty" colspan="${COLUMNS.length}">${text}</td>`;
      body.appendChild(tr);
      return;
    }
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.className = "signalpy-bus-row";
      tr.dataset.key = row.key;
      tr.dataset.target = row.target;
      tr.dataset.instance = row.instance;
      tr.dataset.runnable = row.runnable;
      tr.dataset.handler = row.handler;
      if (row.target === selected) tr.classList.add("selected");
      if (row.errors > 0) tr.classList.add("failed");
      for (const [key, , cls] of COLUMNS) {
        const td = document.createElement("td");
        if (cls) td.className = cls;
        if (key === "state") td.classList.add(`state-${row.state}`);
        td.textContent = row[key] === null || row[key] === undefined ? "" : String(row[key]);
        if (key === "result" && row.error) td.title = row.error;
        if (key === "arrow" && row.routes && row.routes.length > 1) {
          td.title = `one handler, reachable under ${row.routes.length} routed names`;
        }
        tr.appendChild(td);
      }
      tr.addEventListener("click", () => {
        model.set("selected_target", row.target === selected ? null : row.target);
        model.save_changes();
      });
      body.appendChild(tr);
    }
  }

  const events = ["rows", "selected_target", "summary", "sort_by", "descending", "filter",
                  "recent_first"];
  draw();
  for (const name of events) model.on(`change:${name}`, draw);
  return () => {
    for (const name of events) model.off(`change:${name}`, draw);
  };
}

export default { render };
