// The browser side of jupyter_actors' Timeline widget (an anywidget ES module).
//
// One Store per widget model holds every bar by call id; it takes the full
// state (the `_state` trait) and the deltas the kernel sends at most ten times
// a second (custom messages). Each view draws the store as SVG and, on an
// update, touches only the bars that changed: bars live in one <g> per lane in
// time units (ms) under a `scale(k, 1)` transform, so when the time axis grows
// only those few transforms change, not thousands of rects.

const NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
                 "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const LABEL_W = 210, AXIS_H = 22, SECTION_H = 22, GROUP_H = 18, QUEUE_H = 10, PAD_R = 12;
const STATUS = ["queued", "running", "finished", "failed", "cancelled"];
// Columns of a bar row (see _model.py).
const ID = 0, GROUP = 1, LANE = 2, METHOD = 3, QUEUED = 4, STARTED = 5, ENDED = 6, STATE = 7,
  CONCURRENCY_GROUP = 8;

function svgEl(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

function htmlEl(tag, cls, parent, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// Thin lanes for many slots, so 1000 async slots do not make a page-long chart.
const laneHeight = (n) => Math.max(2, Math.min(14, 240 / Math.max(n, 1)));

function seconds(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return "-";
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

// The smallest "round" span >= x, so a growing run rescales in a few steps.
function niceCeil(x) {
  const m = Math.pow(10, Math.floor(Math.log10(Math.max(x, 1e-3))));
  for (const f of [1, 1.5, 2, 3, 4, 5, 6, 8, 10]) if (f * m >= x) return f * m;
  return 10 * m;
}

function ticks(span) {
  const raw = span / 6;
  const m = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((f) => f * m).find((s) => s >= raw);
  const out = [];
  for (let t = 0; t <= span + 1e-9; t += step) out.push(t);
  return out;
}

const tickLabel = (ms, span) =>
  (span >= 2000 ? `${+(ms / 1000).toFixed(3)} s` : `${+ms.toFixed(3)} ms`);

class Store {
  constructor(model) {
    this.views = new Set();
    this.reset(model.get("_state") || {});
    model.on("change:_state", () => {
      this.reset(model.get("_state") || {});
      for (const v of this.views) v.invalidate(null);
    });
    model.on("msg:custom", (msg) => this.delta(msg));
  }

  reset(state) {
    this.layout = {sections: state.sections || [], groups: state.groups || [],
                   lanes: state.lanes || [], methods: state.methods || [],
                   evicted: state.evicted || 0};
    this.bars = new Map();
    this.open = new Set();  // ids still queued or running: drawn up to "now"
    for (const row of state.bars || []) this.put(row);
    this.now = state.now || 0;
  }

  put(row) {
    this.bars.set(row[ID], row);
    if (row[STATE] < 2) this.open.add(row[ID]); else this.open.delete(row[ID]);
  }

  delta(msg) {
    if (!msg || msg.kind !== "delta") return;
    let layout = false;
    if (msg.sections) {
      this.layout = {sections: msg.sections, groups: msg.groups, lanes: msg.lanes,
                     methods: msg.methods, evicted: msg.evicted || 0};
      layout = true;
    }
    const ids = [];
    for (const row of msg.bars || []) {
      this.put(row);
      ids.push(row[ID]);
    }
    this.now = msg.now;
    for (const v of this.views) v.invalidate(layout ? null : ids);
  }

  nowIn(section) {
    const s = this.layout.sections[section];
    return s && s.t0 !== null ? this.now - s.t0 : 0;
  }
}

const stores = new WeakMap();

function storeFor(model) {
  let store = stores.get(model);
  if (!store) {
    store = new Store(model);
    stores.set(model, store);
  }
  return store;
}

class View {
  constructor(model, el, store) {
    this.model = model;
    this.store = store;
    this.root = htmlEl("div", "jupyter-actors-timeline-view", el);
    this.header = htmlEl("div", "ja-header", this.root);
    this.titleEl = htmlEl("span", "ja-title", this.header);
    this.legend = htmlEl("span", "ja-legend", this.header);
    this.scroll = htmlEl("div", "ja-scroll", this.root);
    this.svg = svgEl("svg", {class: "jupyter-actors-timeline"}, this.scroll);
    this.tip = htmlEl("div", "ja-tip", this.root);
    this.rects = new Map();
    this.pending = new Set();
    this.full = true;
    this.frame = 0;
    this.k = 0;
    this.width = 0;
    this.svg.addEventListener("mousemove", (e) => this.hover(e));
    this.svg.addEventListener("mouseleave", () => (this.tip.style.display = "none"));
    if (typeof ResizeObserver !== "undefined") {
      this.resize = new ResizeObserver(() => this.invalidate([]));
      this.resize.observe(this.root);
    }
    store.views.add(this);
    this.invalidate(null);
  }

  dispose() {
    this.store.views.delete(this);
    if (this.resize) this.resize.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
  }

  // ids: the bars that changed; null: the layout changed, rebuild everything.
  invalidate(ids) {
    if (ids === null) this.full = true;
    else for (const id of ids) this.pending.add(id);
    if (!this.frame) this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  render() {
    const width = Math.max(this.scroll.clientWidth || this.root.clientWidth || 800, 420);
    if (width !== this.width) {
      this.width = width;
      this.k = 0;  // forces new transforms, axis and bar widths
    }
    this.plotW = width - LABEL_W - PAD_R;
    const store = this.store;
    const dirtyGroups = new Set();
    let rows;
    if (this.full) {
      this.build();
      this.full = false;
      this.span = 1;
      rows = store.bars.values();
      store.layout.groups.forEach((_, g) => dirtyGroups.add(g));
    } else {
      rows = [];
      for (const id of this.pending) if (store.bars.has(id)) rows.push(store.bars.get(id));
      for (const id of store.open) rows.push(store.bars.get(id));  // running bars grow to "now"
    }
    this.pending.clear();
    rows = [...rows];
    for (const row of rows) {
      this.extend(row);
      dirtyGroups.add(row[GROUP]);
    }
    // A new scale redraws every bar (widths are kept in whole pixels); else only the changed.
    if (this.rescale()) rows = store.bars.values();
    for (const row of rows) this.drawBar(row);
    this.updateGroups(dirtyGroups);
  }

  end(row) {
    if (row[ENDED] !== null) return row[ENDED];
    const group = this.store.layout.groups[row[GROUP]];
    return group ? this.store.nowIn(group.section) : 0;
  }

  extend(row) {
    if (row[QUEUED] !== null) this.span = Math.max(this.span, row[QUEUED], this.end(row));
  }

  build() {
    const {sections, groups, lanes, methods} = this.store.layout;
    this.svg.replaceChildren();
    this.rects.clear();
    this.title = this.model.get("title");
    this.titleEl.textContent = this.title || "";
    this.legend.replaceChildren();
    methods.forEach((m, i) => {
      const item = htmlEl("span", "ja-legend-item", this.legend);
      htmlEl("span", "ja-swatch", item).style.background = PALETTE[i % PALETTE.length];
      htmlEl("span", "", item, m);
    });
    if (methods.length) {
      const q = htmlEl("span", "ja-legend-item ja-muted", this.legend);
      htmlEl("span", "ja-swatch ja-swatch-queue", q);
      htmlEl("span", "", q, "queued");
      htmlEl("span", "ja-legend-item ja-muted", this.legend,
             "red outline: failed · dashed: cancelled");
    }
    if (this.store.layout.evicted) {
      htmlEl("span", "ja-legend-item ja-muted", this.legend,
             `(${this.store.layout.evicted} oldest calls no longer shown)`);
    }
    this.grid = svgEl("g", {class: "ja-grid"}, this.svg);
    const body = svgEl("g", {}, this.svg);
    const lanesOf = new Map();
    lanes.forEach(([g, label, order], i) => {
      if (!lanesOf.has(g)) lanesOf.set(g, []);
      lanesOf.get(g).push({i, label, order});
    });
    this.scaled = [];          // <g>s in ms units: bars of each lane, queue areas
    this.laneInfo = new Map(); // lane -> {bars, y, h}
    this.groupInfo = new Map(); // group -> {stats, queue}
    this.sectionInfo = [];
    let y = AXIS_H;
    sections.forEach((section, si) => {
      const title = svgEl("text", {x: 4, y: y + 15, class: "ja-section"}, body);
      this.sectionInfo.push({title, name: section.title, groups: []});
      y += SECTION_H;
      groups.forEach((group, gi) => {
        if (group.section !== si) return;
        this.sectionInfo[si].groups.push(gi);
        const text = svgEl("text", {x: 10, y: y + 13, class: "ja-group"}, body);
        text.textContent = group.label;
        const detail = svgEl("tspan", {class: "ja-detail"}, text);
        detail.textContent = `  ${group.detail}`;
        const stats = svgEl("tspan", {class: "ja-detail"}, text);
        y += GROUP_H;
        const queueG = svgEl("g", {"data-y": y}, body);
        this.scaled.push(queueG);
        const queue = svgEl("path", {class: "ja-queue"}, queueG);
        svgEl("text", {x: LABEL_W - 6, y: y + 8, class: "ja-lane", "text-anchor": "end"}, body)
          .textContent = "queued";
        y += QUEUE_H;
        const mine = (lanesOf.get(gi) || []).sort((a, b) => a.order - b.order);
        const h = laneHeight(mine.length);
        mine.forEach((lane, n) => {
          if (n % 2 === 0) {
            svgEl("rect", {x: LABEL_W, y, width: this.plotW, height: h, class: "ja-stripe"}, body);
          }
          if (h >= 9) {
            const label = {x: LABEL_W - 6, y: y + h - 3, class: "ja-lane", "text-anchor": "end"};
            svgEl("text", label, body).textContent = lane.label;
          }
          const bars = svgEl("g", {class: "ja-lane-bars", "data-y": y}, body);
          this.scaled.push(bars);
          this.laneInfo.set(lane.i, {bars, y, h, label: lane.label});
          y += h;
        });
        if (mine.length && h < 9) {
          svgEl("text", {x: LABEL_W - 6, y: y - 2, class: "ja-lane", "text-anchor": "end"}, body)
            .textContent = `${mine.length} slots`;
        }
        this.groupInfo.set(gi, {stats, queue});
        y += 4;
      });
      y += 6;
    });
    this.height = y + 4;
    this.svg.setAttribute("height", this.height);
    this.k = 0;
  }

  drawBar(row) {
    const id = row[ID];
    let rect = this.rects.get(id);
    const info = this.laneInfo.get(row[LANE]);
    if (row[LANE] < 0 || row[STARTED] === null || !info) {
      if (rect) {
        rect.remove();
        this.rects.delete(id);
      }
      return;
    }
    if (!rect) {
      rect = svgEl("rect", {"data-id": id, y: 0.5});
      this.rects.set(id, rect);
    }
    if (rect.parentNode !== info.bars) info.bars.appendChild(rect);
    const state = row[STATE];
    rect.setAttribute("class", `ja-bar ${STATUS[state]}`);
    rect.setAttribute("x", row[STARTED]);
    // Widths in ms under scale(k): leave a half-pixel gap between neighbours, and keep
    // calls shorter than a pixel one pixel wide, so thousands of short calls still show.
    const px = (this.end(row) - row[STARTED]) * this.k;
    rect.setAttribute("width", Math.max(px - 0.5, 1) / this.k);
    rect.setAttribute("height", Math.max(info.h - 1, 1));
    rect.setAttribute("fill", PALETTE[row[METHOD] % PALETTE.length]);
  }

  // Fit the time axis to the span seen so far; true when the scale changed.
  rescale() {
    const span = niceCeil(this.span);
    const k = this.plotW / span;
    if (k === this.k) return false;
    this.k = k;
    for (const g of this.scaled) {
      g.setAttribute("transform", `translate(${LABEL_W},${g.dataset.y}) scale(${k},1)`);
    }
    this.grid.replaceChildren();
    for (const t of ticks(span)) {
      const x = LABEL_W + t * k;
      svgEl("line", {x1: x, x2: x, y1: AXIS_H - 2, y2: this.height, class: "ja-gridline"},
            this.grid);
      svgEl("text", {x, y: AXIS_H - 7, class: "ja-tick", "text-anchor": "middle"}, this.grid)
        .textContent = tickLabel(t, span);
    }
    for (const stripe of this.svg.querySelectorAll("rect.ja-stripe")) {
      stripe.setAttribute("width", this.plotW);
    }
    return true;
  }

  // Calls, max overlap and queue depth of the groups whose bars changed; section wall times.
  updateGroups(dirty) {
    if (!dirty.size) return;
    const store = this.store;
    const rows = new Map();
    for (const g of dirty) rows.set(g, []);
    for (const row of store.bars.values()) {
      const list = rows.get(row[GROUP]);
      if (list) list.push(row);
    }
    for (const [g, list] of rows) {
      const info = this.groupInfo.get(g);
      const group = store.layout.groups[g];
      if (!info || !group) continue;
      const now = store.nowIn(group.section);
      const runs = [], waits = [];
      for (const r of list) {
        const end = r[ENDED] !== null ? r[ENDED] : now;
        if (r[STARTED] !== null) runs.push([r[STARTED], 1], [end, -1]);
        const leave = r[STARTED] !== null ? r[STARTED] : end;
        if (r[QUEUED] !== null && leave > r[QUEUED]) waits.push([r[QUEUED], 1], [leave, -1]);
      }
      const order = (a, b) => a[0] - b[0] || a[1] - b[1];  // an end before a start at a tie
      runs.sort(order);
      let running = 0, overlap = 0;
      for (const [, d] of runs) overlap = Math.max(overlap, (running += d));
      const failed = list.filter((r) => r[STATE] === 3).length;
      const cancelled = list.filter((r) => r[STATE] === 4).length;
      info.stats.textContent = `  ·  ${list.length} calls · max overlap ${overlap}` +
        (failed ? ` · ${failed} failed` : "") + (cancelled ? ` · ${cancelled} cancelled` : "");
      info.overlap = overlap;
      waits.sort(order);
      let depth = 0, peak = 0;
      const points = [];
      for (const [t, d] of waits) {
        depth += d;
        peak = Math.max(peak, depth);
        points.push([t, depth]);
      }
      if (!points.length) {
        info.queue.setAttribute("d", "");
        continue;
      }
      const scale = (QUEUE_H - 1) / Math.max(peak, 1);
      const base = QUEUE_H - 0.5;
      let d = `M${points[0][0]},${base}`, level = 0;
      for (const [t, dp] of points) {
        d += `L${t},${base - level * scale}L${t},${base - dp * scale}`;
        level = dp;
      }
      info.queue.setAttribute("d", d + "Z");
    }
    this.sectionInfo.forEach((s, si) => {
      let calls = 0, start = 0, end = 0, busy = false;
      const now = store.nowIn(si);
      for (const row of store.bars.values()) {
        const group = store.layout.groups[row[GROUP]];
        if (!group || group.section !== si) continue;
        calls += 1;
        start = Math.min(start, row[QUEUED] ?? 0);
        if (row[ENDED] === null) busy = true;
        end = Math.max(end, row[ENDED] ?? now);
      }
      const wall = calls ? `${busy ? "running… " : "wall "}${seconds(end - start)}`
                         : "no calls yet";
      s.title.textContent = `${s.name ? s.name + " — " : ""}${calls} calls · ${wall}`;
    });
  }

  hover(e) {
    const target = e.target.closest ? e.target.closest("rect.ja-bar") : null;
    if (!target) {
      this.tip.style.display = "none";
      return;
    }
    const row = this.store.bars.get(+target.dataset.id);
    if (!row) return;
    const group = this.store.layout.groups[row[GROUP]];
    const end = row[ENDED] !== null ? row[ENDED] : this.store.nowIn(group.section);
    const lane = this.laneInfo.get(row[LANE]);
    this.tip.textContent =
      `${this.store.layout.methods[row[METHOD]]}\ncall id ${row[ID]} · ${STATUS[row[STATE]]}\n` +
      `ran ${seconds(end - row[STARTED])}, queued ${seconds(row[STARTED] - row[QUEUED])}\n` +
      `${group.label} · ${lane ? lane.label : ""}` +
      (row[CONCURRENCY_GROUP] ? `\nconcurrency group ${row[CONCURRENCY_GROUP]}` : "");
    const box = this.root.getBoundingClientRect();
    this.tip.style.display = "block";
    this.tip.style.left = `${Math.min(e.clientX - box.left + 14, box.width - 220)}px`;
    this.tip.style.top = `${e.clientY - box.top + 14}px`;
  }
}

export default {
  initialize({model}) {
    storeFor(model);
    // A view opened after a page reload has only the last full state: ask for a fresh one.
    try {
      model.send({kind: "hello"});
    } catch (err) {
      // no kernel (a static page): the saved state is all there is
    }
  },
  render({model, el}) {
    const view = new View(model, el, storeFor(model));
    const onTitle = () => (view.titleEl.textContent = model.get("title") || "");
    model.on("change:title", onTitle);
    return () => {
      model.off("change:title", onTitle);
      view.dispose();
    };
  },
};
