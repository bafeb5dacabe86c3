// ActorsView: one row per actor, updated in place (only the cells whose text changed).
const COLUMNS = ["class", "name", "pid", "kind", "max_concurrency", "running", "queued",
                 "done", "failed", "restarts", "status", ""];
// Row fields as sent by Python: [actor_id, class, name, pid, kind, max_concurrency,
// running, queued, done, failed, restarts, alive, death, restarting].
const TEXT_FIELDS = 10;   // fields 1..10 are shown as they are
const CONFIRM_MS = 4000;  // a first click on "kill" asks; a second one within this time kills

function button(label, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "ja-av-button " + cls;
  b.textContent = label;
  return b;
}

function render({ model, el }) {
  el.classList.add("jupyter-actors-actors-view");
  const summary = document.createElement("div");
  summary.className = "ja-av-summary";
  const scroll = document.createElement("div");
  scroll.className = "ja-av-scroll";
  const table = document.createElement("table");
  table.className = "ja-av-table";
  const head = table.createTHead().insertRow();
  for (const c of COLUMNS) {
    const th = document.createElement("th");
    th.textContent = c;
    head.appendChild(th);
  }
  const body = table.createTBody();
  scroll.appendChild(table);
  el.append(summary, scroll);

  const rows = new Map();  // actor_id -> {tr, cells, values, status, cancel, kill}
  let timers = [];

  function makeRow(id) {
    const tr = document.createElement("tr");
    tr.dataset.actorId = id;
    const cells = [];
    for (let i = 0; i < COLUMNS.length; i++) cells.push(tr.insertCell());
    const cancel = button("cancel queued", "ja-av-cancel");
    const kill = button("kill", "ja-av-kill");
    cancel.title = "Cancel this actor's calls that have not started";
    kill.title = "End this actor's process (asks first)";
    cancel.addEventListener("click", () => model.send({ kind: "cancel", actor_id: id }));
    kill.addEventListener("click", () => {
      if (kill.dataset.confirm === "1") {
        model.send({ kind: "kill", actor_id: id });
        kill.textContent = "killing…";
        kill.disabled = true;
        return;
      }
      kill.dataset.confirm = "1";
      kill.textContent = "kill? click again";
      kill.classList.add("ja-av-confirm");
      timers.push(setTimeout(() => {
        if (kill.disabled) return;
        kill.dataset.confirm = "";
        kill.textContent = "kill";
        kill.classList.remove("ja-av-confirm");
      }, CONFIRM_MS));
    });
    cells[COLUMNS.length - 1].append(cancel, kill);
    return { tr, cells, values: [], status: null, cancel, kill };
  }

  function update() {
    const data = model.get("_rows") || [];
    const seen = new Set();
    let alive = 0, running = 0, queued = 0;
    for (const r of data) {
      const id = r[0];
      seen.add(id);
      let row = rows.get(id);
      if (!row) {
        row = makeRow(id);
        rows.set(id, row);
        body.appendChild(row.tr);
      }
      for (let j = 0; j < TEXT_FIELDS; j++) {
        const text = r[j + 1] === null ? "" : String(r[j + 1]);
        if (row.values[j] !== text) {
          row.values[j] = text;
          row.cells[j].textContent = text;
        }
      }
      const isAlive = r[11], death = r[12] || "";
      const restarting = isAlive && r[13];
      const status = restarting ? "restarting" : isAlive ? "alive" : "dead: " + (death || "unknown cause");
      if (row.status !== status) {
        row.status = status;
        const cell = row.cells[TEXT_FIELDS];
        cell.textContent = "";
        const badge = document.createElement("span");
        badge.className = restarting ? "ja-av-restarting" : isAlive ? "ja-av-alive" : "ja-av-dead";
        badge.textContent = restarting ? "restarting" : isAlive ? "alive" : "dead";
        cell.appendChild(badge);
        if (!isAlive) {
          const why = document.createElement("small");
          why.textContent = " " + (death || "unknown cause");
          cell.appendChild(why);
        }
        row.tr.classList.toggle("ja-av-row-dead", !isAlive);
        row.cancel.disabled = !isAlive;
        row.kill.disabled = !isAlive;
      }
      row.tr.classList.toggle("ja-av-busy", r[6] > 0);
      if (isAlive) alive++;
      running += r[6];
      queued += r[7];
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        rows.delete(id);
      }
    }
    summary.textContent = `${data.length} actor${data.length === 1 ? "" : "s"} · ${alive} alive · ` +
      `${running} running · ${queued} queued`;
  }

  model.on("change:_rows", update);
  update();
  return () => {
    model.off("change:_rows", update);
    for (const t of timers) clearTimeout(t);
    timers = [];
  };
}

export default { render };
