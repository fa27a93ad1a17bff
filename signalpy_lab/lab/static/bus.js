// signalpy_lab BusTable view: one row per (route, target); a click selects the tenant.
//
// Ten columns do not fit a notebook's width: the long ones ("route", "last result") wrap at
// their spaces, and the table scrolls in its own box rather than being clipped by the
// LabPanel's tab.

const COLUMNS = [
  ["target", "target"],
  ["instance", "instance"],
  ["factory", "factory"],
  ["runnable", "runnable"],
  ["arrow", "route", "wrap"],
  ["state", "state"],
  ["calls", "calls", "num"],
  ["errors", "errors", "num errors"],
  ["latency", "last latency", "num"],
  ["result", "last result", "wrap"],
];

function render({ model, el }) {
  el.classList.add("signalpy-lab", "signalpy-bus");
  const table = document.createElement("table");
  table.className = "signalpy-table";
  const head = document.createElement("thead");
  head.innerHTML = "<tr>" + COLUMNS.map(([, title, cls]) => `<th class="${cls || ""}">${title}</th>`).join("") + "</tr>";
  const body = document.createElement("tbody");
  table.append(head, body);
  const scroll = document.createElement("div");
  scroll.className = "signalpy-scroll";
  scroll.appendChild(table);
  el.appendChild(scroll);

  function draw() {
    const rows = model.get("rows") || [];
    const selected = model.get("selected_target");
    body.replaceChildren();
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      tr.innerHTML = `<td class="signalpy-empty" colspan="${COLUMNS.length}">no routes</td>`;
      body.appendChild(tr);
      return;
    }
    for (const row of rows) {
      const tr = document.createElement("tr");
      if (row.target === selected) tr.classList.add("selected");
      if (row.errors > 0) tr.classList.add("failed");
      for (const [key, , cls] of COLUMNS) {
        const td = document.createElement("td");
        if (cls) td.className = cls;
        if (key === "state") td.classList.add(`state-${row.state}`);
        td.textContent = row[key] === null || row[key] === undefined ? "" : String(row[key]);
        if (key === "result" && row.error) td.title = row.error;
        tr.appendChild(td);
      }
      tr.addEventListener("click", () => {
        model.set("selected_target", row.target === selected ? null : row.target);
        model.save_changes();
      });
      body.appendChild(tr);
    }
  }

  draw();
  model.on("change:rows", draw);
  model.on("change:selected_target", draw);
  return () => {
    model.off("change:rows", draw);
    model.off("change:selected_target", draw);
  };
}

export default { render };
