// The story panels beside the timeline: where the scene is, how the
// characters feel about each other, what they remember, and the world
// events in play. Each panel redraws whole from the chat model: the lists
// are short, and a full redraw can never drift from the model.

import { tint } from "./colour.js";
import { byTestId, fill, h } from "./dom.js";

const STATUS_LABEL = {
  planned: "planned",
  active: "happening now",
  completed: "completed",
  cancelled: "cancelled",
};

/**
 * `root` holds the panels (found by data-testid inside it); `indicator` is
 * the scene label above the timeline. `pin(memory, pinned)` and
 * `planEvent(title, description)` return promises of the server's answer.
 */
export class StoryPanels {
  constructor(root, indicator, { names, pin, planEvent, showError }) {
    this.root = root;
    this.indicator = indicator;
    this.names = names;
    this.pin = pin;
    this.planEvent = planEvent;
    this.showError = showError;
    this.chat = null;
    this.selectedEdge = null; // "source\u0000target" shown under the matrix
    this.edgesEl = byTestId("edges", root);
    this.memoriesEl = byTestId("memories", root);
    this.worldEl = byTestId("world-events", root);
    this.sceneEl = byTestId("scene-detail", root);
    this.worldForm = byTestId("world-form", root);
    this.worldForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitWorldEvent();
    });
  }

  /** Draw every panel for `chat` (null: no chat open). */
  render(chat) {
    if (chat !== this.chat) this.selectedEdge = null;
    this.chat = chat;
    this.root.classList.toggle("no-chat", !chat);
    this.renderScene();
    this.renderEdges();
    this.renderMemories();
    this.renderWorld();
  }

  // --- scene ------------------------------------------------------------------

  renderScene() {
    const chat = this.chat;
    const label = this.indicator;
    if (!chat) {
      label.dataset.state = "none";
      label.textContent = "";
      fill(this.sceneEl);
      return;
    }
    const scene = chat.scene;
    if (scene) {
      label.dataset.state = "open";
      label.dataset.sceneId = String(scene.id);
      label.textContent = `At ${scene.location || "an unnamed place"}`;
    } else {
      label.dataset.state = chat.closedScene ? "closed" : "none";
      delete label.dataset.sceneId;
      label.textContent = chat.closedScene ? "The scene has closed" : "No scene yet";
    }
    label.title = scene?.started_at ? `since ${when(scene.started_at)}` : "";
    const rows = [];
    if (scene) {
      rows.push(h("p", {}, h("strong", {}, scene.location || "An unnamed place")));
      if (scene.started_at) rows.push(h("p", { class: "muted" }, `Scene began ${when(scene.started_at)}.`));
    } else if (!chat.closedScene) {
      rows.push(h("p", { class: "muted" }, "A scene opens with the first turn."));
    }
    if (chat.closedScene) {
      const summaries = Object.entries(chat.closedScene.summaries);
      rows.push(
        h("p", { class: "muted" }, "The last scene closed. A new one opens with your next turn."),
        summaries.length
          ? h(
              "ul",
              { class: "scene-summaries", testid: "scene-summaries" },
              summaries.map(([botId, text]) =>
                h("li", {}, h("span", { class: "speaker" }, this.names(botId)), " ", text),
              ),
            )
          : null,
      );
    }
    fill(this.sceneEl, ...rows);
  }

  // --- relationships ------------------------------------------------------------

  /**
   * One compact matrix: each row is who feels, each column toward whom, and
   * each cell holds affinity and trust (0–100) as two numbers over two thin
   * bars. Clicking a cell shows that pair's summary and what one knows of
   * the other below the matrix.
   */
  renderEdges() {
    const chat = this.chat;
    if (!chat) return fill(this.edgesEl);
    if (chat.edges.size === 0) {
      return fill(this.edgesEl, h("p", { class: "muted" }, "Relationships appear after the first exchange."));
    }
    // The cast in its order, then anyone else an edge names (a former member).
    const ids = chat.botIds();
    for (const edge of chat.edges.values()) {
      for (const id of [edge.source_id, edge.target_id]) if (!ids.includes(id)) ids.push(id);
    }
    const head = h(
      "tr",
      {},
      h("th", { class: "matrix-corner", scope: "col" }, h("span", { class: "visually-hidden" }, "feels toward")),
      ids.map((id) => tint(h("th", { scope: "col", class: "matrix-col", title: this.names(id) }, initials(this.names(id))), id)),
    );
    const rows = ids.map((source) =>
      h(
        "tr",
        {},
        tint(h("th", { scope: "row", class: "matrix-row speaker" }, this.names(source)), source),
        ids.map((target) => this.edgeCell(chat, source, target)),
      ),
    );
    const selected = this.selectedEdge ? chat.edges.get(this.selectedEdge) : null;
    fill(
      this.edgesEl,
      h(
        "table",
        { class: "edge-matrix", testid: "edge-matrix" },
        h("caption", { class: "matrix-legend" }, "Row feels toward column: affinity / trust"),
        h("thead", {}, head),
        h("tbody", {}, rows),
      ),
      selected ? this.edgeDetail(selected) : null,
    );
  }

  edgeCell(chat, source, target) {
    if (source === target) return h("td", { class: "matrix-self", "aria-label": "self" }, "\u2014");
    const key = `${source}\u0000${target}`;
    const edge = chat.edges.get(key);
    if (!edge) {
      return h("td", { class: "matrix-none", title: `${this.names(source)} has no feelings toward ${this.names(target)} yet` }, "\u00b7");
    }
    const label = `${this.names(source)} toward ${this.names(target)}: affinity ${edge.affinity}, trust ${edge.trust}`;
    return h(
      "td",
      {
        class: `edge${this.selectedEdge === key ? " edge--selected" : ""}`,
        testid: "edge",
        data: { sourceId: source, targetId: target },
        title: edge.summary ? `${label}. ${edge.summary}` : label,
      },
      h(
        "button",
        {
          type: "button",
          class: "edge-cell",
          "aria-label": label,
          "aria-expanded": this.selectedEdge === key ? "true" : "false",
          onclick: () => {
            this.selectedEdge = this.selectedEdge === key ? null : key;
            this.renderEdges();
          },
        },
        number("affinity", edge.affinity, edge.affinity_delta),
        number("trust", edge.trust, edge.trust_delta),
      ),
    );
  }

  /** What one feels and knows of the other, for the pair picked in the matrix. */
  edgeDetail(edge) {
    const facts = edge.knowledge_facts ?? [];
    return h(
      "div",
      { class: "edge-detail", testid: "edge-detail", data: { sourceId: edge.source_id, targetId: edge.target_id } },
      h(
        "div",
        { class: "edge-pair" },
        tint(h("span", { class: "speaker" }, this.names(edge.source_id)), edge.source_id),
        h("span", { class: "arrow", "aria-label": "feels about" }, " \u2192 "),
        tint(h("span", { class: "speaker" }, this.names(edge.target_id)), edge.target_id),
      ),
      gauge("Affinity", "affinity", edge.affinity, edge.affinity_delta),
      gauge("Trust", "trust", edge.trust, edge.trust_delta),
      edge.summary ? h("p", { class: "edge-summary" }, edge.summary) : null,
      facts.length
        ? h(
            "ul",
            { class: "facts", "aria-label": "What they know" },
            facts.map((fact) => h("li", { testid: "fact" }, fact)),
          )
        : null,
    );
  }

  // --- memories -----------------------------------------------------------------

  renderMemories() {
    const chat = this.chat;
    if (!chat) return fill(this.memoriesEl);
    const groups = chat.botIds().map((botId) => {
      const memories = [...chat.memories.values()]
        .filter((memory) => memory.bot_id === botId)
        .sort(
          (a, b) =>
            Number(b.pinned) - Number(a.pinned) || b.significance - a.significance || b.id - a.id,
        );
      return h(
        "li",
        { class: "memory-group" },
        h("h4", {}, `${this.names(botId)} remembers`),
        memories.length
          ? h("ul", { class: "memory-list" }, memories.map((memory) => this.memoryRow(memory)))
          : h("p", { class: "muted" }, "Nothing yet."),
      );
    });
    fill(this.memoriesEl, ...groups);
  }

  memoryRow(memory) {
    const level = Math.max(0, Math.min(3, Number(memory.significance) || 0));
    const button = h(
      "button",
      {
        type: "button",
        class: "quiet pin",
        testid: "memory-pin",
        "aria-pressed": memory.pinned ? "true" : "false",
        title: memory.pinned
          ? "Unpin: let this memory fade like any other"
          : "Pin: always keep this memory in mind",
      },
      memory.pinned ? "Pinned" : "Pin",
    );
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await this.pin(memory, !memory.pinned);
      } catch (error) {
        button.disabled = false;
        this.showError(error);
      }
    });
    return h(
      "li",
      {
        class: `memory${memory.pinned ? " memory--pinned" : ""}`,
        testid: "memory",
        data: {
          memoryId: memory.id,
          botId: memory.bot_id,
          pinned: memory.pinned ? "true" : "false",
          significance: level,
        },
      },
      h(
        "span",
        {
          class: "significance",
          title: `significance ${level} of 3`,
          "aria-label": `significance ${level} of 3`,
        },
        "\u25cf".repeat(level) + "\u25cb".repeat(3 - level),
      ),
      h("span", { class: "memory-text" }, memory.text),
      button,
    );
  }

  // --- world events ---------------------------------------------------------------

  renderWorld() {
    const chat = this.chat;
    this.worldForm.hidden = !chat;
    if (!chat) return fill(this.worldEl);
    const events = [...chat.world.values()].sort((a, b) => a.event_id - b.event_id);
    if (events.length === 0) {
      return fill(this.worldEl, h("li", { class: "muted" }, "No world events in play."));
    }
    fill(
      this.worldEl,
      ...events.map((event) =>
        h(
          "li",
          {
            class: `world-event world-event--${event.status}`,
            testid: "world-event",
            data: { eventId: event.event_id, status: event.status },
          },
          h("span", { class: "world-title" }, event.title),
          h("span", { class: "badge" }, STATUS_LABEL[event.status] ?? event.status),
        ),
      ),
    );
  }

  async submitWorldEvent() {
    const title = byTestId("world-title", this.worldForm);
    const description = byTestId("world-description", this.worldForm);
    const submit = byTestId("world-create", this.worldForm);
    if (!title.value.trim()) {
      title.focus();
      return;
    }
    submit.disabled = true;
    try {
      await this.planEvent(title.value.trim(), description.value.trim());
      title.value = "";
      description.value = "";
    } catch (error) {
      this.showError(error);
    } finally {
      submit.disabled = false;
    }
  }
}

/** One matrix number (0..100) over a thin bar, marked up or down after a change. */
function number(key, value, delta) {
  const v = Math.max(0, Math.min(100, Number(value) || 0));
  const change = Number(delta) || 0;
  const el = h(
    "span",
    { class: `cell-value cell-value--${key}${change > 0 ? " delta--up" : change < 0 ? " delta--down" : ""}` },
    h("span", { testid: `edge-${key}` }, String(v)),
    h("span", { class: "cell-bar", "aria-hidden": "true" }),
  );
  el.style.setProperty("--value", `${v}%`);
  return el;
}

/** "Ada Lovelace" → "AL": column heads stay narrow; the full name is the title. */
function initials(name) {
  const parts = String(name).trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return "?";
  if (parts.length === 1) return [...parts[0]].slice(0, 3).join("");
  return parts.slice(0, 2).map((part) => [...part][0]).join("").toUpperCase();
}

/** A 0..100 gauge with its number and, after an update, the change. */
function gauge(label, key, value, delta) {
  const v = Math.max(0, Math.min(100, Number(value) || 0));
  const fillBar = h("span", { class: "gauge-fill" });
  fillBar.style.setProperty("--value", `${v}%`);
  const change = Number(delta) || 0;
  return h(
    "div",
    { class: `gauge gauge--${key}` },
    h("span", { class: "gauge-label" }, label),
    h("span", { class: "gauge-track", role: "img", "aria-label": `${label} ${v} of 100` }, fillBar),
    h("span", { class: "gauge-value", testid: `edge-${key}` }, String(v)),
    change
      ? h(
          "span",
          { class: `delta ${change > 0 ? "delta--up" : "delta--down"}` },
          change > 0 ? `+${change}` : `\u2212${-change}`,
        )
      : h("span", { class: "delta" }),
  );
}

function when(stamp) {
  const date = new Date(stamp);
  return Number.isNaN(date.getTime())
    ? String(stamp)
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
