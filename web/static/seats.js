// Several people at one table: the seat picker (which persona this page
// plays in the open chat, or a new one) and the turns queued behind the one
// in flight, under the composer. A seat belongs to the page's connection, so
// it is taken again after every reconnect (see app.js).

import { byTestId, fill, h } from "./dom.js";

const NEW = "\u0000new";

/**
 * `root` holds the seat row and the queue list. `chat()` is the open chat
 * model; `personas()` the known personas by id; `request(type, fields)`
 * sends a command; `changed()` redraws what depends on the seat.
 */
export class SeatPicker {
  constructor(root, { chat, personas, request, showError, names, changed }) {
    this.chat = chat;
    this.personas = personas;
    this.request = request;
    this.showError = showError;
    this.names = names;
    this.changed = changed;
    this.seats = new Map(); // chat id → persona id this page sits as
    this.el = (id) => byTestId(id, root);
    this.select = this.el("seat-persona");
    this.wire();
  }

  wire() {
    this.select.addEventListener("change", () => {
      const value = this.select.value;
      this.el("seat-new-form").hidden = value !== NEW;
      if (value === NEW) this.el("seat-new-name").focus();
      else this.take(value);
    });
    this.el("seat-new-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    this.el("seat-new-cancel").addEventListener("click", () => {
      this.el("seat-new-form").hidden = true;
      this.render();
    });
  }

  /** The persona whose turns this page sends in the open chat (`you` with no seat). */
  seat() {
    const chat = this.chat();
    return (chat && this.seats.get(chat.id)) || "you";
  }

  /** Sit as `personaId` at the open chat; the server says who sits down. */
  async take(personaId) {
    const chat = this.chat();
    if (!chat) return;
    try {
      await this.request("take_seat", { chat_id: chat.id, persona_id: personaId });
      this.seats.set(chat.id, personaId);
    } catch (error) {
      this.showError(error);
    }
    this.render();
    this.changed();
  }

  async create() {
    const name = this.el("seat-new-name").value.trim();
    if (!name) return;
    const persona = this.el("seat-new-persona").value;
    try {
      const answer = await this.request("create_persona", { name, persona });
      this.personas().set(answer.persona.id, answer.persona);
      this.el("seat-new-name").value = "";
      this.el("seat-new-persona").value = "";
      this.el("seat-new-form").hidden = true;
      await this.take(answer.persona.id);
    } catch (error) {
      this.showError(error);
    }
  }

  /** Take the open chat's seat again: a new connection sits as `you` until it does. */
  reseat() {
    const chat = this.chat();
    const persona = chat && this.seats.get(chat.id);
    if (persona) this.take(persona);
  }

  render() {
    const chat = this.chat();
    this.el("seat").hidden = !chat;
    if (!chat) return;
    const people = new Set(chat.people());
    const options = [...this.personas().values()].map((p) =>
      h(
        "option",
        { value: p.id },
        p.id === "you" ? `${p.name} (you)` : p.name,
        people.has(p.id) ? " \u00b7 at this table" : "",
      ),
    );
    if (!this.personas().has("you")) options.unshift(h("option", { value: "you" }, "You"));
    options.push(h("option", { value: NEW }, "New persona\u2026"));
    fill(this.select, options);
    this.select.value = this.el("seat-new-form").hidden ? this.seat() : NEW;
    this.renderQueue();
  }

  /** The turns waiting behind the one in flight; one's own can be dropped. */
  renderQueue() {
    const chat = this.chat();
    const list = this.el("queue");
    const queue = chat?.queue ?? [];
    list.hidden = queue.length === 0;
    const mine = this.seat();
    fill(
      list,
      queue.map((item, index) =>
        h(
          "li",
          { testid: "queued-turn", data: { personaId: item.persona_id, queueId: item.queue_id } },
          h("span", { class: "queue-place" }, `${index + 1}.`),
          " ",
          h("span", { class: "speaker" }, this.names(item.persona_id)),
          " ",
          h("span", { class: "queue-prose" }, item.prose),
          item.persona_id === mine
            ? h(
                "button",
                {
                  type: "button",
                  class: "quiet",
                  testid: "queued-drop",
                  title: "Drop your queued turns (this also stops the answer being written)",
                  onclick: () => this.drop(),
                },
                "Drop",
              )
            : null,
        ),
      ),
    );
  }

  async drop() {
    const chat = this.chat();
    if (!chat) return;
    try {
      await this.request("cancel", { chat_id: chat.id, queued: true });
    } catch (error) {
      this.showError(error);
    }
  }
}
