// signalpy_lab EventLog view: recent events, newest first, with their epoch and command.
//
// Each entry is one row: where it happened (the cell's prompt ``In [9]``, the epoch ``#4``
// and the command; muted, cut to a fixed width, since every event of a cell repeats it;
// hover shows it whole), the kind, then the text, which wraps.

function render({ model, el }) {
  el.classList.add("signalpy-lab", "signalpy-eventlog");
  const list = document.createElement("ol");
  list.className = "signalpy-log";
  el.appendChild(list);

  function draw() {
    const entries = model.get("entries") || [];
    list.replaceChildren();
    if (entries.length === 0) {
      const li = document.createElement("li");
      li.className = "signalpy-empty";
      li.textContent = "no events yet";
      list.appendChild(li);
      return;
    }
    for (const entry of entries) {
      const li = document.createElement("li");
      const epoch = document.createElement("span");
      epoch.className = "epoch";
      epoch.textContent = entry.where || "";
      epoch.title = epoch.textContent;
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = entry.kind;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = entry.text;
      li.append(epoch, kind, text);
      li.title = entry.time;
      list.appendChild(li);
    }
  }

  draw();
  model.on("change:entries", draw);
  return () => model.off("change:entries", draw);
}

export default { render };
